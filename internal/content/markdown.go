package content

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"
)

// parser holds what is costly to build and safe to share across files: the
// Markdown renderer and the sanitising policy. Load builds one per call.
type parser struct {
	markdown goldmark.Markdown
	policy   *bluemonday.Policy
	// fileBuf and sidecarBuf hold the file being parsed (see parseFile);
	// renderBuf and cleanBuf its Markdown rendered, then sanitised.
	fileBuf, sidecarBuf, renderBuf, cleanBuf bytes.Buffer
	// linkBase is Options.LinkBase.
	linkBase func(slug string) *url.URL
	// refs collects the relative links of the file being parsed that name a
	// file a piece may carry (see localRefs); parseFile reads them.
	refs []string
	// keep holds the strings of the pieces parsed (see Piece.compact).
	keep slab
}

// base is the absolute URL a piece with this slug is read at, or nil when
// links are left as written.
func (ps *parser) base(slug string) *url.URL {
	if ps.linkBase == nil || slug == "" {
		return nil
	}
	if u := ps.linkBase(slug); u != nil && u.IsAbs() {
		return u
	}
	return nil
}

func newParser() *parser {
	return &parser{
		markdown: goldmark.New(
			goldmark.WithExtensions(extension.GFM),
			// Raw HTML is rendered, then the policy decides what of it stays.
			goldmark.WithRendererOptions(html.WithUnsafe()),
		),
		policy: bluemonday.UGCPolicy(),
	}
}

// ParseMarkdown parses one Markdown piece with YAML front matter. file names
// the piece in problems (relative to the content folder). It never panics.
func ParseMarkdown(file string, data []byte) (Piece, []Problem) {
	return newParser().parseMarkdown(file, data, nil)
}

func (ps *parser) parseMarkdown(file string, data, sidecar []byte) (Piece, []Problem) {
	p := Piece{File: file, Hash: hashOf(data, sidecar)}
	if prob := checkText(file, data); prob != nil {
		return p, []Problem{*prob}
	}
	src := normalizeNewlines(data)

	var problems []Problem
	front, body, bodyLine, fmProblem := splitFrontMatter(src)
	switch {
	case fmProblem != "":
		return p, []Problem{{File: file, Line: 1, Severity: Error, Message: fmProblem}}
	case front == nil:
		problems = append(problems, Problem{File: file, Line: 1, Severity: Warning,
			Message: "no front matter (--- … ---): the whole file is the body"})
	default:
		meta, probs := parseMeta(metaSource{file: file, lineOffset: 1}, front)
		problems = append(problems, probs...)
		meta.apply(&p)
	}
	problems = append(problems, applySidecar(&p, file, sidecar)...)

	problems = append(problems, scanDangerousHTML(file, body, bodyLine)...)
	// Both buffers are the parser's, reused from piece to piece: a body is
	// rendered and sanitised without copies or growing a buffer each time.
	rendered, sanitized := &ps.renderBuf, &ps.cleanBuf
	rendered.Reset()
	if err := ps.markdown.Convert(body, rendered); err != nil {
		return p, append(problems, Problem{File: file, Severity: Error, Message: fmt.Sprintf("render Markdown: %v", err)})
	}
	sanitized.Reset()
	sanitized.Grow(rendered.Len())
	if err := ps.policy.SanitizeReaderToWriter(bytes.NewReader(rendered.Bytes()), sanitized); err != nil {
		return p, append(problems, Problem{File: file, Severity: Error, Message: fmt.Sprintf("sanitise HTML: %v", err)})
	}
	clean := bytes.TrimSpace(sanitized.Bytes())
	// The sanitiser leaves raw HTML's tags unbalanced (a <div> never closed);
	// the one parse that finds the text also writes the body back balanced.
	nodes, err := parseFragmentFrom(bytes.NewReader(clean))
	if err == nil {
		ps.refs = append(ps.refs, localRefs(nodes)...)
		if base := ps.base(slugOf(&p, file)); base != nil {
			for _, n := range nodes {
				resolveNode(n, base)
			}
			p.LinksBase = base.String()
		}
		// The plain text is left to PlainText, for the few pieces a digest carries.
		p.Lede = nodesLede(nodes)
		p.HTML, err = renderNodes(nodes, len(clean))
	}
	if err != nil {
		return p, append(problems, Problem{File: file, Severity: Error, Message: fmt.Sprintf("render Markdown: %v", err)})
	}
	problems = append(problems, finish(&p, file, bodyLine)...)
	return p, problems
}

// splitFrontMatter cuts "---\n…\n---\n" off the top. front is nil when there is
// no front matter; problem is set when it is opened but never closed. bodyLine
// is the file's line number of the body's first line.
func splitFrontMatter(src []byte) (front, body []byte, bodyLine int, problem string) {
	if !bytes.HasPrefix(src, []byte("---\n")) {
		return nil, src, 1, ""
	}
	rest, offset, line := src[4:], 4, 2
	for {
		end := bytes.IndexByte(rest, '\n')
		l := rest
		if end >= 0 {
			l = rest[:end]
		}
		if trimmed := string(bytes.TrimRight(l, " \t")); trimmed == "---" || trimmed == "..." {
			front = src[4:offset]
			if end < 0 {
				return front, nil, line + 1, ""
			}
			return front, rest[end+1:], line + 1, ""
		}
		if end < 0 {
			return nil, nil, 0, "front matter opened with --- on line 1 is never closed with a --- line"
		}
		rest, offset, line = rest[end+1:], offset+end+1, line+1
	}
}

var (
	scriptTag    = regexp.MustCompile(`(?i)<script`)
	eventHandler = regexp.MustCompile(`(?i)<[a-z][^>]*?\s(on[a-z]+)\s*=`)
	scriptURL    = regexp.MustCompile(`(?i)(javascript|vbscript)\s*:`)
)

// scanDangerousHTML reports, by line, what the sanitiser is about to remove, so
// the editor learns of it instead of finding a silently changed piece.
func scanDangerousHTML(file string, body []byte, firstLine int) []Problem {
	// Most lines hold no tag and no "script": cheap byte checks spare them the
	// regular expressions, which backtrack on long lines.
	if !bytes.ContainsRune(body, '<') && !mayHoldScript(string(body)) {
		return nil
	}
	var problems []Problem
	for i, line := range strings.Split(string(body), "\n") {
		n := firstLine + i
		if strings.IndexByte(line, '<') >= 0 {
			if scriptTag.MatchString(line) {
				problems = append(problems, Problem{File: file, Line: n, Severity: Warning, Message: fmt.Sprintf("removed <script> at line %d", n)})
			}
			for _, m := range eventHandler.FindAllStringSubmatch(line, -1) {
				problems = append(problems, Problem{File: file, Line: n, Severity: Warning, Message: fmt.Sprintf("removed event handler %s= at line %d", strings.ToLower(m[1]), n)})
			}
		}
		if strings.IndexByte(line, ':') < 0 || !mayHoldScript(line) {
			continue
		}
		if m := scriptURL.FindStringSubmatch(line); m != nil {
			problems = append(problems, Problem{File: file, Line: n, Severity: Warning, Message: fmt.Sprintf("removed %s: URL at line %d", strings.ToLower(m[1]), n)})
		}
	}
	return problems
}

// mayHoldScript reports whether s might match "script" case-insensitively. Any
// non-ASCII byte counts as a maybe: the expressions fold Unicode, where "ſ"
// (long s) matches "s".
func mayHoldScript(s string) bool {
	if !isASCII(s) {
		return true
	}
	// 'p' is the rarest letter of "script" in prose: look around each p and P
	// (found by the fast byte search) rather than at every position.
	for _, p := range [2]byte{'p', 'P'} {
		for from := 0; ; {
			k := strings.IndexByte(s[from:], p)
			if k < 0 {
				break
			}
			at := from + k // s[at-4:at+2] would be "script"
			if at >= 4 && at+2 <= len(s) && strings.EqualFold(s[at-4:at+2], "script") {
				return true
			}
			from = at + 1
		}
	}
	return false
}

// isASCII reports whether every byte of s is below 0x80, eight at a time.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if w&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
