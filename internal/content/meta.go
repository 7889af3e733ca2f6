package content

import (
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// metaSource says where a block of YAML keys came from, so that every problem in
// it points at the right file and at the line in that file.
type metaSource struct {
	file string
	// lineOffset is added to yaml.v3's line numbers: 1 for front matter (the
	// opening "---" line comes first), 0 for a sidecar file.
	lineOffset int
}

func (s metaSource) problem(line int, sev Severity, format string, args ...any) Problem {
	if line > 0 {
		line += s.lineOffset
	}
	return Problem{File: s.file, Line: line, Severity: sev, Message: fmt.Sprintf(format, args...)}
}

// metaFields records what a front-matter block or sidecar set. Only the keys it
// names are applied to a piece, so a sidecar overrides exactly what it sets.
type metaFields struct {
	set map[string]bool
	// slugLine is where an explicit slug was given, for a later error about it.
	slugLine int

	title        string
	authors      []Author
	date         time.Time
	updated      time.Time
	summary      string
	topics       []string
	slug         string
	canonicalURL string
	source       Source
	image        string
	draft        bool
}

// apply copies the keys that were set onto p.
func (m *metaFields) apply(p *Piece) {
	for key := range m.set {
		switch key {
		case "title":
			p.Title = m.title
		case "authors":
			p.Authors = m.authors
		case "date":
			p.Date = m.date
		case "updated":
			p.Updated = m.updated
		case "summary":
			p.Summary = m.summary
		case "topics":
			p.Topics = m.topics
		case "slug":
			p.Slug = m.slug
		case "canonical_url":
			p.CanonicalURL = m.canonicalURL
		case "source":
			p.Source = m.source
		case "image":
			p.Image = m.image
		case "draft":
			p.Draft = m.draft
		}
	}
}

var yamlErrLine = regexp.MustCompile(`line (\d+)`)

// parseMeta reads a YAML mapping of front-matter keys. Every bad key or value is
// a Problem; the keys that were good are still returned.
func parseMeta(src metaSource, data []byte) (meta *metaFields, problems []Problem) {
	meta = &metaFields{set: map[string]bool{}}
	var doc yaml.Node
	if err := decodeYAML(data, &doc); err != nil {
		line := 0
		if m := yamlErrLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return meta, []Problem{src.problem(line, Error, "unparsable YAML: %s", msg)}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return meta, nil // empty document: nothing set
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return meta, []Problem{src.problem(root.Line, Error, "expected a mapping of keys (title, authors, date, …), got %s", kindName(root))}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		keyNode, val := root.Content[i], root.Content[i+1]
		key := keyNode.Value
		if meta.set[key] {
			problems = append(problems, src.problem(keyNode.Line, Error, "key %q given twice", key))
			continue
		}
		fieldProblems := meta.setField(src, key, keyNode, val)
		problems = append(problems, fieldProblems...)
	}
	return meta, problems
}

// decodeYAML shields the caller from a panic inside the YAML library: the parsers
// promise never to panic on any input, and that library's history has had some.
func decodeYAML(data []byte, doc *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("YAML parser failed: %v", r)
		}
	}()
	return yaml.Unmarshal(data, doc)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return "a single value"
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

func (m *metaFields) setField(src metaSource, key string, keyNode, val *yaml.Node) []Problem {
	bad := func(format string, args ...any) []Problem {
		return []Problem{src.problem(val.Line, Error, "%s: "+format, append([]any{key}, args...)...)}
	}
	scalar := func() (string, bool) {
		if val.Kind != yaml.ScalarNode {
			return "", false
		}
		return val.Value, true
	}
	switch key {
	case "title", "summary":
		s, ok := scalar()
		if !ok {
			return bad("expected text, got %s", kindName(val))
		}
		s = strings.TrimSpace(s)
		if key == "title" {
			if s == "" {
				return bad("empty title")
			}
			m.title = s
		} else {
			m.summary = s
		}
	case "date", "updated":
		s, ok := scalar()
		if !ok {
			return bad("expected a date, got %s", kindName(val))
		}
		t, err := parseDate(s)
		if err != nil {
			return bad("%v", err)
		}
		if key == "date" {
			m.date = t
		} else {
			m.updated = t
		}
	case "slug":
		s, ok := scalar()
		if !ok {
			return bad("expected text, got %s", kindName(val))
		}
		s = strings.TrimSpace(s)
		if !validSlug(s) {
			return bad("%q is not a URL-safe slug (lower-case letters, digits and single hyphens, e.g. %q)", s, Slugify(s))
		}
		m.slug = s
		m.slugLine = val.Line + src.lineOffset
	case "canonical_url", "image":
		s, ok := scalar()
		if !ok {
			return bad("expected a URL, got %s", kindName(val))
		}
		s = strings.TrimSpace(s)
		if err := checkURL(s); err != nil {
			return bad("%v", err)
		}
		if key == "image" {
			m.image = s
		} else {
			m.canonicalURL = s
		}
	case "draft":
		s, ok := scalar()
		b, err := strconv.ParseBool(s)
		if !ok || err != nil || val.Tag != "!!bool" {
			return bad("expected true or false, got %q", val.Value)
		}
		m.draft = b
	case "topics":
		topics, probs := parseTopics(src, key, val)
		if len(probs) > 0 {
			return probs
		}
		m.topics = topics
	case "authors":
		authors, probs := parseAuthors(src, val)
		if len(probs) > 0 {
			return probs
		}
		m.authors = authors
	case "source":
		s, probs := parseSource(src, val)
		if len(probs) > 0 {
			return probs
		}
		m.source = s
	default:
		return []Problem{src.problem(keyNode.Line, Error, "unknown key %q (known: title, authors, date, updated, summary, topics, slug, canonical_url, source, image, draft)", key)}
	}
	m.set[key] = true
	return nil
}

// parseDate takes RFC 3339 or a bare YYYY-MM-DD (midnight UTC).
func parseDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (use YYYY-MM-DD or RFC 3339, e.g. 2026-11-03T09:00:00Z)", s)
}

// checkURL accepts absolute http(s) URLs and relative references; anything with
// another scheme (javascript:, data:, file:) is refused.
func checkURL(s string) error {
	if s == "" {
		return fmt.Errorf("empty URL")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == ' ' {
			return fmt.Errorf("%q: URL contains a space or control character", s)
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if u.Scheme == "" {
		return nil
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: only http, https or relative URLs are allowed, not the %s scheme", s, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: absolute URL without a host", s)
	}
	return nil
}

func parseTopics(src metaSource, key string, val *yaml.Node) ([]string, []Problem) {
	var items []*yaml.Node
	switch val.Kind {
	case yaml.ScalarNode:
		items = []*yaml.Node{val}
	case yaml.SequenceNode:
		items = val.Content
	default:
		return nil, []Problem{src.problem(val.Line, Error, "%s: expected a list of topics, got %s", key, kindName(val))}
	}
	var topics []string
	var problems []Problem
	seen := map[string]bool{}
	for _, it := range items {
		if it.Kind != yaml.ScalarNode {
			problems = append(problems, src.problem(it.Line, Error, "%s: expected a topic name, got %s", key, kindName(it)))
			continue
		}
		t := Slugify(it.Value)
		if t == "" {
			problems = append(problems, src.problem(it.Line, Error, "%s: %q gives an empty topic", key, it.Value))
			continue
		}
		if !seen[t] {
			seen[t] = true
			topics = append(topics, t)
		}
	}
	return topics, problems
}

func parseAuthors(src metaSource, val *yaml.Node) ([]Author, []Problem) {
	var items []*yaml.Node
	switch val.Kind {
	case yaml.ScalarNode, yaml.MappingNode:
		items = []*yaml.Node{val}
	case yaml.SequenceNode:
		items = val.Content
	default:
		return nil, []Problem{src.problem(val.Line, Error, "authors: expected a list, got %s", kindName(val))}
	}
	var authors []Author
	var problems []Problem
	for _, it := range items {
		switch it.Kind {
		case yaml.ScalarNode:
			name := strings.TrimSpace(it.Value)
			if name == "" {
				problems = append(problems, src.problem(it.Line, Error, "authors: empty name"))
				continue
			}
			authors = append(authors, Author{Name: name})
		case yaml.MappingNode:
			a, probs := parseAuthor(src, it)
			problems = append(problems, probs...)
			if len(probs) == 0 {
				authors = append(authors, a)
			}
		default:
			problems = append(problems, src.problem(it.Line, Error, "authors: expected a name or {name, role, email, url}, got %s", kindName(it)))
		}
	}
	return authors, problems
}

func parseAuthor(src metaSource, n *yaml.Node) (Author, []Problem) {
	var a Author
	var problems []Problem
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			problems = append(problems, src.problem(v.Line, Error, "authors.%s: expected text, got %s", k.Value, kindName(v)))
			continue
		}
		s := strings.TrimSpace(v.Value)
		switch k.Value {
		case "name":
			a.Name = s
		case "role":
			a.Role = s
		case "email":
			if addr, err := mail.ParseAddress(s); err != nil || addr.Address != s {
				problems = append(problems, src.problem(v.Line, Error, "authors.email: %q is not an email address", s))
			}
			a.Email = s
		case "url":
			if err := checkURL(s); err != nil {
				problems = append(problems, src.problem(v.Line, Error, "authors.url: %v", err))
			}
			a.URL = s
		default:
			problems = append(problems, src.problem(k.Line, Error, "authors: unknown key %q (known: name, role, email, url)", k.Value))
		}
	}
	if a.Name == "" {
		problems = append(problems, src.problem(n.Line, Error, "authors: an author without a name"))
	}
	return a, problems
}

func parseSource(src metaSource, val *yaml.Node) (Source, []Problem) {
	var s Source
	switch val.Kind {
	case yaml.ScalarNode:
		s.Name = strings.TrimSpace(val.Value)
	case yaml.MappingNode:
		var problems []Problem
		for i := 0; i+1 < len(val.Content); i += 2 {
			k, v := val.Content[i], val.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				problems = append(problems, src.problem(v.Line, Error, "source.%s: expected text, got %s", k.Value, kindName(v)))
				continue
			}
			switch k.Value {
			case "name":
				s.Name = strings.TrimSpace(v.Value)
			case "url":
				s.URL = strings.TrimSpace(v.Value)
				if err := checkURL(s.URL); err != nil {
					problems = append(problems, src.problem(v.Line, Error, "source.url: %v", err))
				}
			default:
				problems = append(problems, src.problem(k.Line, Error, "source: unknown key %q (known: name, url)", k.Value))
			}
		}
		if len(problems) > 0 {
			return s, problems
		}
	default:
		return s, []Problem{src.problem(val.Line, Error, "source: expected {name, url}, got %s", kindName(val))}
	}
	if s.Name == "" {
		return s, []Problem{src.problem(val.Line, Error, "source: a source without a name")}
	}
	return s, nil
}
