package engine

import "regexp"

var explainPrefix = regexp.MustCompile(`(?is)^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*explain\s+(?:analyze\s+)?`)
