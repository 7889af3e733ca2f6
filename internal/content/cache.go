package content

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
)

// Cache carries what one Load found into the next, so that a piece file left
// as it was (by its stats, its sidecar's and those of the files it links to)
// is not read again. Such a piece comes without its body (Piece.HTML and Text
// are empty), which is read from the file the first time it is asked for
// (Body, PieceHTML, PlainText): a build that renders a handful of pages reads
// a handful of files.
type Cache struct {
	// Stats identify each file under the folder as it is now: its size,
	// modification time and mode, by slash-separated path (the caller stats
	// them anyway to tell whether anything changed). A file not listed is
	// always read.
	Stats map[string]string
	// Prev is what the last Load found, by piece file; Load fills Next with
	// what this one found, for the next (sharing, and marking Reused, the
	// entries of Prev it took).
	Prev, Next map[string]*FileResult
	// NextFiles are the keys of Next in the order Load read them: sorted
	// when Options.Files was.
	NextFiles []string
}

// FileResult is what Load made of one piece file, kept between builds.
type FileResult struct {
	// Sig identifies the inputs it came from: the file's stats, its
	// sidecar's (or its absence) and those of the files it links to.
	Sig string
	// Piece is the piece without its body (HTML, Text), and with only as
	// much of its lede as its teaser shows (none, with a summary).
	Piece    Piece
	OK       bool
	Problems []Problem
	// Sidecar is the sidecar the file took, if any.
	Sidecar string
	// Refs are the files, relative to the content folder, the piece links to
	// within its folder, whether they exist or not.
	Refs []string
	// Reused is set on the results Load took from Prev.
	Reused bool
}

// sig identifies a piece file's inputs in the stats of this Load: a hash of
// their stat lines. buf is scratch space, reused from call to call.
func (c *Cache) sig(buf *[]byte, file, sidecar string, refs []string) string {
	out := c.sigHex(buf, file, sidecar, refs)
	return string(out[:])
}

// sigHex is sig, in an array: comparing it with a cached Sig takes no
// allocation, and Load compares one for every piece file on every build.
func (c *Cache) sigHex(buf *[]byte, file, sidecar string, refs []string) [32]byte {
	b := (*buf)[:0]
	stat := func(p string) {
		s, ok := c.Stats[p]
		if !ok {
			s = "absent"
		}
		b = append(append(append(append(b, p...), ' '), s...), '\n')
	}
	stat(file)
	if sidecar != "" {
		stat(sidecar)
	} else {
		b = append(b, "no sidecar\n"...)
	}
	for _, r := range refs {
		stat(r)
	}
	*buf = b
	sum := sha256.Sum256(b)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return out
}

// Cached is the entry of Cache.Next that the Load which returned p recorded it
// under (nil without a Cache): what Next[p.File] holds, without a lookup a
// build would make for each of its pieces.
func (p *Piece) Cached() *FileResult { return p.cached }

// lazyBody reads a cached piece's body from its file when first asked. It is
// shared by every copy of the piece. It holds what the reading needs rather
// than a closure: one is made for every cached piece on every build.
type lazyBody struct {
	loader     *stubLoader
	file, hash string
	hasSidecar bool

	once       sync.Once
	html, text string
	err        error
}

func (l *lazyBody) get() (string, string, error) {
	l.once.Do(func() { l.html, l.text, l.err = l.loader.load(l.file, l.hash, l.hasSidecar) })
	return l.html, l.text, l.err
}

// Body is p's sanitised HTML body: p.HTML, or, for a piece Load took from its
// Cache, the body read again from its file.
func Body(p *Piece) (string, error) {
	if p.HTML != "" || p.body == nil {
		return p.HTML, nil
	}
	html, _, err := p.body.get()
	return html, err
}

// stubLoader reads the bodies of the pieces a Load took from its Cache: one
// parser per goroutine at a time, from a pool.
type stubLoader struct {
	dir      string
	maxBytes int64
	opts     Options
	parsers  sync.Pool
}

func (l *stubLoader) body(p *Piece, hasSidecar bool) *lazyBody {
	return &lazyBody{loader: l, file: p.File, hash: p.Hash, hasSidecar: hasSidecar}
}

// load reads the body of file again; hash is what the file hashed to when
// it was cached.
func (l *stubLoader) load(file, hash string, hasSidecar bool) (string, string, error) {
	ps, _ := l.parsers.Get().(*parser)
	if ps == nil {
		ps = newParser()
		ps.linkBase = l.opts.LinkBase
	}
	defer l.parsers.Put(ps)
	r := ps.parseFile(l.dir, file, hasSidecar, l.maxBytes, l.opts.MaxAssetBytes)
	switch {
	case !r.ok:
		return "", "", fmt.Errorf("%s: reading the body again: %w", file, errors.New(firstError(r.problems)))
	case r.piece.Hash != hash:
		return "", "", fmt.Errorf("%s: changed while it was being built: build again", file)
	}
	return r.piece.HTML, r.piece.Text, nil
}

func firstError(problems []Problem) string {
	for _, p := range problems {
		if p.Severity == Error {
			return p.String()
		}
	}
	return "not publishable"
}
