package content

import (
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The newsroom plain-text format, one paragraph per line:
//
//	Originally published in the Eurasia Daily Monitor   <- provenance (optional)
//	Jane Doe and John Roe                               <- byline
//	First paragraph …                                   <- body, one line each
//	…
//	Jane Doe                                            <- signature: a name from the byline
//	Senior Fellow, Some Institute                       <- and, optionally, that author's role
//
// Empty lines are ignored; CRLF line ends, a trailing newline and a UTF-8 BOM are
// accepted. Provenance, byline and signature never reach the body.

var provenanceLine = regexp.MustCompile(`(?i)^originally published in\s*(.*)$`)

// bylineSeparators split "A, B and C" / "A & B" into names; longest first.
var bylineSeparators = regexp.MustCompile(`(?i)\s*,\s*and\s+|\s+and\s+|\s*&\s*|\s*,\s*`)

// Bylines are short lists of names; these bounds keep a lede from being taken for one.
const (
	maxBylineChars = 150
	maxRoleChars   = 250
)

type textLine struct {
	n    int // 1-based line number in the file
	text string
}

// ParsePlainText parses one piece in the newsroom plain-text format. sidecar is
// the content of the YAML file beside it (nil when there is none); its keys win
// over what was parsed. It never panics.
func ParsePlainText(file string, data, sidecar []byte) (Piece, []Problem) {
	p := Piece{File: file, Hash: hashOf(data, sidecar)}
	if prob := checkText(file, data); prob != nil {
		return p, []Problem{*prob}
	}
	var problems []Problem
	var lines []textLine
	for i, l := range strings.Split(string(normalizeNewlines(data)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, textLine{n: i + 1, text: l})
		}
	}
	if len(lines) > 0 {
		if m := provenanceLine.FindStringSubmatch(lines[0].text); m != nil {
			p.Source.Name = sourceName(m[1])
			if p.Source.Name == "" {
				problems = append(problems, Problem{File: file, Line: lines[0].n, Severity: Warning,
					Message: "provenance line names no publication"})
			}
			lines = lines[1:]
		}
	}
	if len(lines) > 0 {
		if names, ok := parseByline(lines[0].text); ok {
			for _, n := range names {
				p.Authors = append(p.Authors, Author{Name: n})
			}
			lines = lines[1:]
		} else {
			problems = append(problems, Problem{File: file, Line: lines[0].n, Severity: Warning,
				Message: "no byline (a short line of author names) before the first paragraph: the piece has no author"})
		}
	}
	lines = stripSignature(lines, p.Authors)

	var htmlBody, text strings.Builder
	htmlBody.Grow(len(data) + 8*len(lines))
	text.Grow(len(data) + len(lines))
	for i, l := range lines {
		if i > 0 {
			htmlBody.WriteByte('\n')
			text.WriteString("\n\n")
		}
		htmlBody.WriteString("<p>")
		htmlBody.WriteString(html.EscapeString(l.text))
		htmlBody.WriteString("</p>")
		text.WriteString(l.text)
	}
	p.HTML, p.Text = htmlBody.String(), text.String()
	bodyLine := 0 // an empty body has no line to point at
	if len(lines) > 0 {
		p.Lede = lines[0].text
		bodyLine = lines[0].n
	}

	problems = append(problems, applySidecar(&p, file, sidecar)...)
	problems = append(problems, finish(&p, file, bodyLine)...)
	return p, problems
}

// sourceName turns "the Eurasia Daily Monitor." into "Eurasia Daily Monitor":
// a lower-case "the" belongs to the sentence, not to the name (feeds say
// "Source: Eurasia Daily Monitor"), while a capital "The" is part of the name
// ("Originally published in The Economist").
func sourceName(s string) string {
	s = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), ".:"))
	if strings.HasPrefix(s, "the ") {
		s = strings.TrimSpace(s[4:])
	}
	return s
}

// nameParticles may start a name word in lower case ("Ursula von der Leyen").
var nameParticles = map[string]bool{
	"van": true, "von": true, "der": true, "den": true, "de": true, "da": true,
	"di": true, "du": true, "la": true, "le": true, "al": true, "el": true,
	"bin": true, "ibn": true, "y": true, "dos": true, "das": true, "del": true,
	"della": true, "ter": true, "zu": true,
}

// parseByline splits a byline into names, or says the line is no byline (it is
// the lede): too long, ending like a question or a clause, a name of more than six
// words, or a word in lower case that is no name particle ("rose", "prices").
func parseByline(line string) ([]string, bool) {
	if utf8.RuneCountInString(line) > maxBylineChars || strings.ContainsAny(line[len(line)-1:], "?!:;") {
		return nil, false
	}
	if len(line) > 3 && strings.EqualFold(line[:3], "by ") {
		line = line[3:]
	}
	var names []string
	for _, n := range bylineSeparators.Split(line, -1) {
		words := strings.Fields(n)
		if len(words) == 0 {
			continue
		}
		if len(words) > 6 {
			return nil, false
		}
		for _, w := range words {
			r, _ := utf8.DecodeRuneInString(w)
			if unicode.IsLower(r) && !nameParticles[strings.ToLower(w)] {
				return nil, false
			}
		}
		names = append(names, strings.Join(words, " "))
	}
	return names, len(names) > 0
}

// stripSignature removes the signature at the end: for each author, their name
// alone on a line, optionally followed by their role (which is kept on the
// author). Several authors may sign one after the other.
func stripSignature(lines []textLine, authors []Author) []textLine {
	index := func(s string) int {
		for i, a := range authors {
			if strings.EqualFold(a.Name, s) {
				return i
			}
		}
		return -1
	}
	signed := map[int]bool{}
	for len(lines) > 0 {
		last := lines[len(lines)-1].text
		if i := index(last); i >= 0 && !signed[i] {
			signed[i] = true // name only
			lines = lines[:len(lines)-1]
			continue
		}
		if len(lines) < 2 || utf8.RuneCountInString(last) > maxRoleChars {
			break
		}
		i := index(lines[len(lines)-2].text)
		if i < 0 || signed[i] {
			break
		}
		signed[i] = true
		authors[i].Role = last
		lines = lines[:len(lines)-2]
	}
	return lines
}
