package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestREADMEConfigTableIsCurrent keeps the README's configuration reference equal
// to what publisher config --markdown prints, so the two never drift apart.
func TestREADMEConfigTableIsCurrent(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "(a test keeps them equal) -->\n", "<!-- end of generated table -->"
	s := string(readme)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README has no generated configuration table")
	}
	var out bytes.Buffer
	if code := Main([]string{"config", "--markdown"}, nil, &out, &out, false); code != 0 {
		t.Fatalf("config --markdown exit %d", code)
	}
	if got := s[i+len(start) : j]; got != out.String() {
		t.Fatalf("README's table differs from publisher config --markdown; regenerate it:\n%s", out.String())
	}
}

// TestHelpListsEveryCommand checks the usage text against the command table.
func TestHelpListsEveryCommand(t *testing.T) {
	var out bytes.Buffer
	if code := Main([]string{"help"}, nil, &out, &out, false); code != 0 {
		t.Fatalf("help exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out.String(), "  "+c.name) {
			t.Errorf("help lacks %s", c.name)
		}
		var cmdOut bytes.Buffer
		if code := Main([]string{c.name, "--help"}, nil, &cmdOut, &cmdOut, false); code != 0 || !strings.Contains(cmdOut.String(), "Usage: publisher "+c.name) {
			t.Errorf("%s --help: exit %d\n%s", c.name, code, cmdOut.String())
		}
	}
	var bad bytes.Buffer
	if code := Main([]string{"frobnicate"}, nil, &bad, &bad, false); code != ExitConfig {
		t.Errorf("unknown command exit %d, want %d", code, ExitConfig)
	}
}
