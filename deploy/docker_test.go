package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfileFollowsTheRepository: no Docker daemon or Dockerfile
// linter runs here, so the image is not built in CI; this checks what can
// drift without one: every COPY from the build context exists and is let
// through the Dockerfile's .dockerignore, the build uses the duckdb_arrow
// tag with cgo, and the image runs as a non-root user the chart expects.
func TestDockerfileFollowsTheRepository(t *testing.T) {
	raw, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ignore, err := os.ReadFile("docker/Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	stages := regexp.MustCompile(`(?m)^FROM `).FindAllStringIndex(text, -1)
	if len(stages) < 2 {
		t.Errorf("a multi-stage build expected, %d stages", len(stages))
	}
	final := text[stages[len(stages)-1][0]:]
	for _, m := range regexp.MustCompile(`(?m)^COPY (?:--\S+ )*(\S+) `).FindAllStringSubmatch(text, -1) {
		if strings.Contains(m[0], "--from=") {
			continue
		}
		src := m[1]
		if _, err := os.Stat(filepath.Join("..", src)); err != nil {
			t.Errorf("COPY %s: not in the repository: %v", src, err)
		}
		if !strings.Contains(string(ignore), "!"+src) {
			t.Errorf("COPY %s: the .dockerignore does not let it through", src)
		}
	}
	for _, want := range []string{"CGO_ENABLED=1", "-tags duckdb_arrow", "./cmd/gateway"} {
		if !strings.Contains(text, want) {
			t.Errorf("the build does not say %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^USER 10001:10001$`).MatchString(final) {
		t.Error("the final stage does not run as the non-root user 10001 (the chart's runAsUser)")
	}
	if strings.Contains(final, "ADD ") {
		t.Error("ADD in the final stage: use COPY, nothing fetched at build")
	}
}
