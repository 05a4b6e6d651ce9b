package synth

// Word lists for synthetic names. They are made up or generic British words;
// no list is copied from a register of real suppliers or people.

var supplierStems = []string{
	"Abbey", "Albion", "Allander", "Anchor", "Argyle", "Ashgrove", "Avon", "Balmoral", "Beacon", "Bell", "Benview", "Birch",
	"Bishopton", "Bluebell", "Braeside", "Bridgend", "Broomhill", "Burnside", "Caledonian", "Cairn", "Carrick", "Castle",
	"Cedar", "Central", "Clyde", "Crown", "Dalriada", "Deeside", "Drumlin", "Eastfield", "Elm", "Esk", "Falcon", "Firth",
	"Forth", "Glen", "Granite", "Greenfield", "Harbour", "Heather", "Highland", "Hillview", "Holyrood", "Kelvin", "Kestrel",
	"Kingsway", "Lomond", "Lothian", "Meadow", "Merchant", "Mill", "Moray", "Morven", "Northern", "Oak", "Ochil", "Orchard",
	"Pentland", "Pinewood", "Quarry", "Riverside", "Rowan", "Saltire", "Sandstone", "Shore", "Silverburn", "Skye", "Solway",
	"Southbank", "Spey", "Strath", "Summit", "Tay", "Thistle", "Tower", "Trinity", "Tweed", "Unicorn", "Union", "Valley",
	"Victoria", "Wallace", "Waverley", "Westfield", "Willow", "Windmill",
}

var supplierTrades = []string{
	"Building Services", "Electrical", "Plumbing & Heating", "Roofing", "Joinery", "Civil Engineering", "Landscapes",
	"Cleaning Services", "Catering", "Office Supplies", "IT Solutions", "Software", "Consulting", "Legal Services",
	"Care Services", "Home Care", "Transport", "Coaches", "Taxis", "Fuel", "Recycling", "Waste Management", "Security",
	"Print", "Signs", "Furniture", "Surfacing", "Scaffolding", "Training", "Recruitment", "Vehicle Hire", "Tyres",
	"Fencing", "Glazing", "Lifts", "Fire Protection", "Pest Control", "Laboratories", "Communications", "Energy",
}

var companySuffixes = []string{"Ltd", "Ltd", "Ltd", "Limited", "Limited", "LLP", "PLC", "CIC", "& Sons Ltd", "(Scotland) Ltd"}

var charityForms = []string{
	"%s Community Trust", "%s Housing Association", "%s Citizens Advice Bureau", "%s Women's Aid", "%s Carers Centre",
	"%s Youth Project", "%s Foodbank", "%s Community Council", "%s Arts Trust", "%s Development Trust", "Friends of %s Park",
	"%s Sports Club", "%s Befriending Service", "%s Credit Union",
}

var publicBodies = []string{
	"Scottish Water", "Police Scotland", "Scottish Fire and Rescue Service", "Scottish Environment Protection Agency",
	"Transport Scotland", "Skills Development Scotland", "Scottish Courts and Tribunals Service", "Care Inspectorate",
	"Scottish Public Pensions Agency", "Historic Environment Scotland", "NatureScot", "Accounts Commission",
	"Aberdeen City Council", "Angus Council", "East Lothian Council", "Falkirk Council", "Midlothian Council",
	"Perth and Kinross Council", "Renfrewshire Council", "West Lothian Council",
}

var firstNames = []string{
	"Aileen", "Alan", "Alison", "Andrew", "Angus", "Anna", "Calum", "Catherine", "Craig", "David", "Derek", "Donald",
	"Eilidh", "Elaine", "Euan", "Fiona", "Fraser", "Gillian", "Gordon", "Graham", "Hamish", "Heather", "Iain", "Isla",
	"Jamie", "Janet", "Jennifer", "John", "Karen", "Kirsty", "Lewis", "Lorna", "Lynn", "Mairi", "Malcolm", "Margaret",
	"Mark", "Morag", "Neil", "Niamh", "Rachel", "Robert", "Ross", "Ruth", "Scott", "Shona", "Stuart", "Susan", "Tom", "Zainab",
	"Amir", "Priya", "Wei", "Olumide", "Katarzyna", "Tomasz",
}

var surnames = []string{
	"Anderson", "Baird", "Black", "Brown", "Buchanan", "Cameron", "Campbell", "Clark", "Craig", "Cunningham", "Davidson",
	"Douglas", "Duncan", "Ferguson", "Fraser", "Gibson", "Graham", "Grant", "Hamilton", "Henderson", "Hughes", "Hunter",
	"Johnston", "Kerr", "Lindsay", "MacDonald", "MacKenzie", "MacLeod", "Marshall", "Martin", "McIntyre", "Millar",
	"Mitchell", "Morrison", "Munro", "Murray", "Paterson", "Reid", "Robertson", "Ross", "Scott", "Simpson", "Sinclair",
	"Smith", "Stewart", "Sutherland", "Taylor", "Thomson", "Walker", "Wallace", "Watson", "White", "Wilson", "Young",
	"Khan", "Singh", "Chen", "Adeyemi", "Nowak",
}

var streetStems = []string{
	"Station", "Church", "Mill", "Park", "High", "Main", "Victoria", "Castle", "Bridge", "School", "Manse", "Kirk",
	"Burn", "Glebe", "Hill", "Loch", "Murray", "Queen", "King", "Wellington", "Rose", "Thistle", "Birch", "Rowan",
	"Hawthorn", "Craigie", "Balgay", "Forth", "Clyde", "Ness", "Tay", "Glen", "Ochil", "Pentland", "Links", "Shore",
}

var streetKinds = []string{"Road", "Street", "Avenue", "Crescent", "Gardens", "Place", "Terrace", "Drive", "Wynd", "Court", "View", "Lane", "Brae"}

// postcode inward letters: those valid in the last two places of a UK
// postcode.
const inwardLetters = "ABDEFGHJLNPQRSTUWXYZ"

// orgUnits are the services payments are booked to, with their divisions.
var orgUnits = []struct {
	Unit      string
	Divisions []string
}{
	{"Children, Education and Justice Services", []string{"Schools and Lifelong Learning", "Children's Social Work", "Early Years", "Justice Services"}},
	{"Health and Social Care Partnership", []string{"Home Care", "Residential Care", "Direct Payments", "Learning Disabilities"}},
	{"Place", []string{"Roads and Transport", "Waste and Cleansing", "Parks and Greenspace", "Planning and Building Standards"}},
	{"Housing and Regeneration", []string{"Housing Repairs", "Homelessness", "Economic Development", "Property and Facilities"}},
	{"Corporate Services", []string{"Digital Services", "Finance", "Human Resources", "Legal and Democratic Services"}},
	{"Culture and Communities", []string{"Libraries", "Museums and Galleries", "Community Centres", "Sport and Leisure"}},
}

// expenseTypes are the detailed expenditure types, each with its category
// and CIPFA-like code, weighted roughly as Leeds's December 2013 mix.
type expenseType struct {
	Category string
	Type     string
	Code     int
	Weight   int
	Purposes []string
}

var expenseTypes = []expenseType{
	{"Third Party Payments", "Private Contractors", 501, 14, []string{"Contracted services", "Framework call-off", "Specialist services"}},
	{"Third Party Payments", "Voluntary Organisations", 502, 9, []string{"Grant payment", "Service level agreement", "Community grant"}},
	{"Third Party Payments", "Other Local Authorities", 503, 6, []string{"Cross-boundary placement", "Shared service recharge"}},
	{"Supplies and Services", "Operational Materials", 205, 8, []string{"Materials", "Consumables", "Stock replenishment"}},
	{"Supplies and Services", "Equipment and Furniture", 210, 6, []string{"Equipment purchase", "Furniture"}},
	{"Supplies and Services", "Computer Software and Licences", 230, 5, []string{"Software licence renewal", "Support and maintenance"}},
	{"Supplies and Services", "Professional Fees", 250, 5, []string{"Consultancy", "Legal fees", "Surveying fees"}},
	{"Supplies and Services", "Printing and Stationery", 215, 3, []string{"Printing", "Stationery"}},
	{"Employees", "Agency Staff", 110, 12, []string{"Agency cover", "Temporary staff"}},
	{"Employees", "Training", 130, 6, []string{"Training course", "Conference fees"}},
	{"Transfer Payments", "Direct Payments", 801, 4, []string{"Self-directed support", "Direct payment"}},
	{"Transfer Payments", "Foster Care Allowances", 805, 3, []string{"Fostering allowance", "Kinship care allowance"}},
	{"Transport", "Vehicle Hire", 410, 3, []string{"Vehicle hire", "Minibus hire"}},
	{"Transport", "Fuel", 420, 2, []string{"Fuel", "Fuel cards"}},
	{"Transport", "Home to School Transport", 430, 2, []string{"School transport contract", "Taxi transport"}},
	{"Premises", "Repairs and Maintenance", 310, 4, []string{"Responsive repairs", "Planned maintenance"}},
	{"Premises", "Energy Costs", 320, 2, []string{"Electricity", "Gas"}},
	{"Premises", "Rents", 330, 1, []string{"Rent", "Lease payment"}},
	{"Capital", "Construction Works", 901, 3, []string{"Capital works", "New build"}},
	{"Capital", "Vehicles and Plant", 902, 2, []string{"Fleet replacement", "Plant purchase"}},
}

// planning application types: codelist value, weight, suffix used in
// references, and LGA / Idox / Uniform labels.
var appTypes = []struct {
	Code    string
	Weight  int
	Suffix  string
	Label   string // Idox-style label
	Uniform string // Uniform export code
}{
	{"hh", 45, "HH", "Householder Application", "HOU"},
	{"full", 22, "FUL", "Planning Permission", "FUL"},
	{"outline", 4, "PPP", "Planning Permission in Principle", "PPP"},
	{"reserved-matters", 2, "AMC", "Approval of Matters Specified in Conditions", "AMC"},
	{"lbc", 6, "LBC", "Listed Building Consent", "LBC"},
	{"advertising", 5, "ADV", "Advertisement Consent", "ADV"},
	{"prior-approval", 4, "PN", "Prior Notification", "PNO"},
	{"ldc", 5, "CLP", "Certificate of Lawfulness (Proposed)", "CLP"},
	{"s73", 3, "S42", "Section 42 Application", "S42"},
	{"consent-under-tpo", 2, "TPO", "Works to Trees (TPO)", "TPO"},
	{"notice-trees-in-con-area", 2, "TCA", "Works to Trees in a Conservation Area", "TCA"},
}

var descriptions = map[string][]string{
	"hh": {"Erection of single storey extension to rear of dwellinghouse", "Formation of dormer window to front elevation",
		"Erection of garden room", "Replacement windows and doors", "Installation of air source heat pump",
		"Erection of two storey side extension", "Formation of driveway and dropped kerb", "Erection of porch"},
	"full": {"Erection of 12 flats with associated parking and landscaping", "Change of use from retail (Class 1A) to cafe (Class 3)",
		"Erection of industrial unit (Class 5)", "Demolition of existing building and erection of dwellinghouse",
		"Installation of solar panels to roof", "Change of use of flat to short-term let", "Erection of 4 dwellinghouses"},
	"outline":                  {"Planning permission in principle for residential development", "Planning permission in principle for erection of dwellinghouse"},
	"reserved-matters":         {"Approval of matters specified in conditions: siting, design and landscaping"},
	"lbc":                      {"Internal alterations to listed building", "Replacement of sash and case windows", "Repairs to stonework and roof"},
	"advertising":              {"Display of illuminated fascia sign", "Display of non-illuminated projecting sign", "Display of digital advertising panel"},
	"prior-approval":           {"Prior notification for agricultural building", "Prior notification for installation of telecommunications mast"},
	"ldc":                      {"Certificate of lawfulness for proposed rear extension", "Certificate of lawfulness for existing use as dwellinghouse"},
	"s73":                      {"Application under section 42 to vary condition 2 (hours of operation)", "Application under section 42 to remove condition 5"},
	"consent-under-tpo":        {"Fell one sycamore tree protected by TPO", "Crown reduction of two beech trees protected by TPO"},
	"notice-trees-in-con-area": {"Fell one ash tree in conservation area", "Prune lime trees in conservation area"},
}
