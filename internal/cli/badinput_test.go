package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestBadInputCorpus runs publisher check over every case of testdata/bad: each must
// give its error with file and line, exit as expected, never panic, and still count
// the good piece and the good subscriber beside it.
func TestBadInputCorpus(t *testing.T) {
	root := filepath.Join("..", "..", "testdata", "bad")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	checked := regexp.MustCompile(`checked (\d+) pieces and (\d+) subscribers`)
	n := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		n++
		name := e.Name()
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "content", "good.md"), "---\ntitle: A good piece\ntopics: [energy]\n---\n\nIt loads whatever its neighbours do.\n")
			write(t, filepath.Join(dir, "subscribers", "good.csv"), "email,name,cadence\ngood@example.org,Good Reader,immediate\n")
			write(t, filepath.Join(dir, "publisher.yaml"), "")
			copyCase(t, filepath.Join(root, name), dir)
			expect := readLines(t, filepath.Join(dir, "expect"))
			wantExit, err := strconv.Atoi(strings.TrimSpace(string(mustRead(t, filepath.Join(dir, "exit")))))
			if err != nil {
				t.Fatal(err)
			}

			var out, errOut bytes.Buffer
			t.Chdir(dir)
			code := Main([]string{"check"}, nil, &out, &errOut, false)
			all := out.String() + errOut.String()
			if code != wantExit {
				t.Errorf("exit %d, want %d\n%s", code, wantExit, all)
			}
			for _, want := range expect {
				if !strings.Contains(all, want) {
					t.Errorf("output lacks %q:\n%s", want, all)
				}
			}
			if strings.HasPrefix(name, "config-") {
				return // a configuration error stops before anything is read
			}
			m := checked.FindStringSubmatch(all)
			if m == nil {
				t.Fatalf("no summary line:\n%s", all)
			}
			if pieces, _ := strconv.Atoi(m[1]); pieces < 1 {
				t.Errorf("the good piece was lost:\n%s", all)
			}
			if subs, _ := strconv.Atoi(m[2]); subs < 1 && !strings.HasPrefix(name, "list-") {
				t.Errorf("the good subscriber was lost:\n%s", all)
			}
			if strings.HasPrefix(name, "list-") && !strings.Contains(all, "good.csv") {
				if subs, _ := strconv.Atoi(m[2]); subs < 1 {
					t.Errorf("the good list was lost:\n%s", all)
				}
			}
		})
	}
	if n < 30 {
		t.Fatalf("the corpus has %d cases; it should have at least 30", n)
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readLines(t *testing.T, path string) []string {
	var out []string
	for _, l := range strings.Split(string(mustRead(t, path)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func copyCase(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		write(t, filepath.Join(dst, rel), string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
