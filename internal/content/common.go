package content

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

var utf8BOM = []byte("\xef\xbb\xbf")

// checkText refuses what cannot be a piece: an empty file, binary data, or
// bytes that are not UTF-8.
func checkText(file string, data []byte) *Problem {
	if len(bytes.TrimSpace(bytes.TrimPrefix(data, utf8BOM))) == 0 {
		return &Problem{File: file, Severity: Error, Message: "empty file"}
	}
	if utf8.Valid(data) && bytes.IndexByte(data, 0) < 0 {
		return nil // the usual case, found by the fast checks; the walk below finds the line
	}
	line := 1
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		switch {
		case r == 0:
			return &Problem{File: file, Line: line, Severity: Error,
				Message: fmt.Sprintf("binary file: NUL byte at byte offset %d (line %d)", off, line)}
		case r == utf8.RuneError && size <= 1:
			return &Problem{File: file, Line: line, Severity: Error,
				Message: fmt.Sprintf("invalid UTF-8 at byte offset %d (line %d): save the file as UTF-8", off, line)}
		case r == '\n':
			line++
		}
		off += size
	}
	return nil
}

// normalizeNewlines drops a UTF-8 byte-order mark and turns CRLF (and lone CR)
// line ends into LF. Line numbers stay those an editor sees.
func normalizeNewlines(data []byte) []byte {
	data = bytes.TrimPrefix(data, utf8BOM)
	if bytes.IndexByte(data, '\r') < 0 {
		return data
	}
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(data, []byte("\r"), []byte("\n"))
}

func hashOf(data, sidecar []byte) string {
	h := sha256.New()
	h.Write(data)
	h.Write(sidecar)
	return hex.EncodeToString(h.Sum(nil))
}

// sidecarName is the sidecar that belongs beside a piece: "a/b.txt" -> "a/b.yaml".
func sidecarName(file string) string {
	return string(appendSidecarName(nil, file))
}

// appendSidecarName appends sidecarName(file) to dst, for a caller that looks
// the name up without keeping it.
func appendSidecarName(dst []byte, file string) []byte {
	return append(append(dst, strings.TrimSuffix(file, path.Ext(file))...), ".yaml"...)
}

// applySidecar lets the sidecar's keys win over what the piece itself said.
// Its problems name the sidecar file and lines in it.
func applySidecar(p *Piece, file string, sidecar []byte) []Problem {
	if sidecar == nil {
		return nil
	}
	name := sidecarName(file)
	if len(bytes.TrimSpace(sidecar)) == 0 {
		return []Problem{{File: name, Severity: Warning, Message: "empty sidecar: nothing set"}}
	}
	if prob := checkText(name, sidecar); prob != nil {
		return []Problem{*prob}
	}
	meta, problems := parseMeta(metaSource{file: name}, normalizeNewlines(sidecar))
	meta.apply(p)
	return problems
}

// finish fills what was not given (title, slug, id) and checks what every piece
// needs, whatever its format. bodyLine points at the body for an empty-body error.
func finish(p *Piece, file string, bodyLine int) []Problem {
	var problems []Problem
	// A Markdown piece's plain text is worked out only when a digest needs it;
	// its lede stands for the body here.
	if strings.TrimSpace(p.Text) == "" && strings.TrimSpace(p.Lede) == "" {
		problems = append(problems, Problem{File: file, Line: bodyLine, Severity: Error, Message: "empty body: the piece has no text"})
	}
	if p.Title == "" && p.Lede != "" {
		p.Title = deriveTitle(p.Lede)
		p.TitleDerived = true
		problems = append(problems, Problem{File: file, Severity: Warning,
			Message: fmt.Sprintf("no title: derived from the lede: %q", p.Title)})
	}
	if p.Slug == "" {
		p.Slug = slugOf(p, file)
		if p.Slug == "" {
			problems = append(problems, Problem{File: file, Severity: Error,
				Message: fmt.Sprintf("file name %q gives an empty slug: rename the file or set slug:", path.Base(file))})
		}
	}
	p.ID = p.Slug
	return problems
}

// slugOf is the piece's slug: the one its front matter or sidecar gave, else
// its file name's.
func slugOf(p *Piece, file string) string {
	if p.Slug != "" {
		return p.Slug
	}
	base := path.Base(file)
	return Slugify(strings.TrimSuffix(base, path.Ext(base)))
}

func hasError(problems []Problem) bool {
	for _, pr := range problems {
		if pr.Severity == Error {
			return true
		}
	}
	return false
}
