import java.sql.*;

// JdbcCheck connects to the gateway's PostgreSQL door with pgJDBC (the
// driver of DBeaver, Tableau and Metabase) and prints what a BI tool's
// navigator and a query see, one fact per line, for postgres_test.go.
public class JdbcCheck {
  public static void main(String[] a) throws Exception {
    try (Connection c = DriverManager.getConnection(a[0], a[1], a[2])) {
      DatabaseMetaData md = c.getMetaData();
      System.out.println("product " + md.getDatabaseProductName() + " " + md.getDatabaseProductVersion());
      try (ResultSet rs = md.getSchemas()) {
        while (rs.next()) System.out.println("schema " + rs.getString("TABLE_SCHEM"));
      }
      try (ResultSet rs = md.getTables(null, "std", "%", new String[] {"TABLE", "VIEW"})) {
        while (rs.next()) System.out.println("table " + rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME") + " " + rs.getString("TABLE_TYPE"));
      }
      try (ResultSet rs = md.getColumns(null, "std", "spend_over_500", "%")) {
        while (rs.next()) System.out.println("column " + rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME") + " " + rs.getInt("DATA_TYPE"));
      }
      try (Statement s = c.createStatement();
           ResultSet rs = s.executeQuery("SELECT council, count(*) AS n, sum(amount) AS total FROM std.spend_over_500 GROUP BY 1 ORDER BY 1")) {
        while (rs.next()) System.out.println("row " + rs.getString(1) + " " + rs.getLong(2) + " " + rs.getBigDecimal(3));
      }
      // Run more often than pgJDBC's prepareThreshold (5): it then
      // switches to a named statement and binary results.
      try (PreparedStatement p = c.prepareStatement(
          "SELECT transaction_id, amount, payment_date FROM std.spend_over_500 WHERE council = ? AND amount > ? ORDER BY transaction_id LIMIT 3")) {
        p.setString(1, "edinburgh");
        p.setBigDecimal(2, new java.math.BigDecimal("1000.00"));
        for (int i = 0; i < 7; i++) {
          try (ResultSet rs = p.executeQuery()) {
            while (rs.next()) System.out.println("prepared" + i + " " + rs.getString(1) + " " + rs.getBigDecimal(2) + " " + rs.getDate(3));
          }
        }
      }
    }
  }
}
