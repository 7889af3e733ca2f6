package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// Files larger than this are served without compression rather than
	// compressed in memory.
	maxGzipSize = 16 << 20
	// Below this, gzip's header costs more than it saves.
	minGzipSize = 256
	// The file cache is dropped whole when it grows past this many files, or
	// when its compressed copies pass maxGzipCache bytes.
	maxCachedFiles = 20000
	maxGzipCache   = 64 << 20
)

// static serves the built output folder: feeds, OPML, the archive pages. Only
// regular files below the folder are reachable (os.Root refuses "..", absolute
// paths and symlinks that lead out); dot-files, such as a writer's temporary
// files, are never served; a folder gives its index.html or a 404, never a listing.
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.renderError(w, r, http.StatusMethodNotAllowed, "Method not allowed", "")
		return
	}
	if !s.built.Load() {
		// The folder may hold a build for other settings (another base URL, whose
		// forms and links point elsewhere): nothing is served until the build at
		// start is done, a matter of seconds.
		w.Header().Set("Retry-After", "5")
		s.renderError(w, r, http.StatusServiceUnavailable, "Starting", "The site is being built. Please try again in a few seconds.")
		return
	}
	upath := r.URL.Path
	if !strings.HasPrefix(upath, "/") {
		upath = "/" + upath
	}
	rel, ok := cleanRelative(upath)
	if !ok {
		s.notFound(w, r)
		return
	}
	root, err := os.OpenRoot(s.opts.OutputDir)
	if err != nil {
		// Nothing built yet: the first run has not finished.
		s.notFound(w, r)
		return
	}
	defer root.Close()

	f, fi, err := openRegular(root, rel)
	if errors.Is(err, errIsDir) {
		if !strings.HasSuffix(upath, "/") {
			// Relative links inside index.html need the trailing slash.
			target := path.Base(upath) + "/"
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		rel = path.Join(rel, "index.html")
		f, fi, err = openRegular(root, rel)
	}
	if err != nil {
		s.notFound(w, r)
		return
	}
	defer f.Close()
	s.serveFile(w, r, rel, f, fi)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.")
}

// cleanRelative turns a URL path into a path relative to the output folder,
// refusing dot-segments and hidden names rather than resolving them.
func cleanRelative(upath string) (string, bool) {
	if strings.ContainsAny(upath, "\\\x00") {
		return "", false
	}
	var parts []string
	for _, seg := range strings.Split(upath, "/") {
		switch {
		case seg == "":
			continue
		case strings.HasPrefix(seg, "."):
			return "", false // "..", ".", ".git", ".tmp-123"
		}
		parts = append(parts, seg)
	}
	if len(parts) == 0 {
		return ".", true
	}
	return strings.Join(parts, "/"), true
}

var errIsDir = errors.New("is a directory")

func openRegular(root *os.Root, rel string) (*os.File, fs.FileInfo, error) {
	f, err := root.Open(rel)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, nil, errIsDir
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fs.ErrNotExist
	}
	return f, fi, nil
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, rel string, f *os.File, fi fs.FileInfo) {
	ctype := contentType(rel)
	gzipIt := compressible(ctype) && fi.Size() >= minGzipSize && fi.Size() <= maxGzipSize
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "public, max-age=300")
	if strings.HasPrefix(ctype, "text/html") {
		h.Set("Content-Security-Policy", archiveCSP)
	}
	if gzipIt {
		h.Add("Vary", "Accept-Encoding")
	}
	wantGzip := gzipIt && acceptsGzip(r.Header.Get("Accept-Encoding"))
	v, err := s.files.get(rel, f, fi, wantGzip)
	if err != nil {
		s.logger.Error("read file", "file", rel, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if wantGzip {
		// A different representation needs its own strong validator.
		h.Set("ETag", `"`+v.etag+`-gz"`)
		h.Set("Content-Encoding", "gzip")
		http.ServeContent(w, r, "", fi.ModTime(), bytes.NewReader(v.gz))
		return
	}
	h.Set("ETag", `"`+v.etag+`"`)
	// ServeContent answers If-None-Match / If-Modified-Since with 304, HEAD
	// and ranges, using the ETag and the file's time.
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func gzipFile(f io.Reader) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // once per file version
	if _, err := io.Copy(zw, f); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// acceptsGzip reads Accept-Encoding, honouring q=0 refusals.
func acceptsGzip(header string) bool {
	gzip, star := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "gzip", "x-gzip":
			gzip = q
		case "*":
			star = q
		}
	}
	if gzip >= 0 {
		return gzip > 0
	}
	return star > 0
}

// contentType gives feeds their registered media types, by the names package
// feed writes (feed.xml, atom.xml, feed.json, feeds.opml, also per topic).
func contentType(name string) string {
	base := strings.ToLower(path.Base(name))
	ext := path.Ext(base)
	var t string
	switch {
	case base == "feed.xml" || base == "rss.xml" || ext == ".rss":
		t = "application/rss+xml"
	case base == "atom.xml" || ext == ".atom":
		t = "application/atom+xml"
	case base == "feed.json":
		t = "application/feed+json"
	case ext == ".opml":
		t = "text/x-opml"
	case ext == ".xml" || ext == ".xsl":
		t = "application/xml"
	case ext == ".json":
		t = "application/json"
	case ext == ".html" || ext == ".htm":
		t = "text/html"
	case ext == ".css":
		t = "text/css"
	case ext == ".js":
		t = "text/javascript"
	case ext == ".txt":
		t = "text/plain"
	case ext == ".svg":
		t = "image/svg+xml"
	default:
		t = mime.TypeByExtension(ext)
		if t == "" {
			return "application/octet-stream"
		}
		if i := strings.IndexByte(t, ';'); i >= 0 {
			t = t[:i]
		}
	}
	if isText(t) {
		return t + "; charset=utf-8"
	}
	return t
}

func isText(t string) bool {
	return strings.HasPrefix(t, "text/") || strings.HasSuffix(t, "+xml") ||
		strings.HasSuffix(t, "+json") || t == "application/xml" || t == "application/json"
}

func compressible(ctype string) bool {
	t, _, _ := strings.Cut(ctype, ";")
	return isText(t)
}

// fileCache keeps each file's content hash, and its gzipped bytes once asked
// for, while its size and modification time stay the same: a feed polled every
// minute is hashed and compressed once per build, not once per request.
type fileCache struct {
	mu       sync.Mutex
	items    map[string]fileVersion
	gzipSize int
}

// fileVersion is what is known of one version of a file.
type fileVersion struct {
	size  int64
	mtime time.Time
	etag  string // without quotes
	gz    []byte // nil until a client asked for gzip
}

func newFileCache() *fileCache { return &fileCache{items: map[string]fileVersion{}} }

// get returns what is known of f's version, computing what is missing (the
// gzipped bytes only when withGzip), and leaves f at offset 0.
func (c *fileCache) get(rel string, f *os.File, fi fs.FileInfo, withGzip bool) (fileVersion, error) {
	c.mu.Lock()
	v, ok := c.items[rel]
	c.mu.Unlock()
	if !ok || v.size != fi.Size() || !v.mtime.Equal(fi.ModTime()) {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return v, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return v, err
		}
		v = fileVersion{size: fi.Size(), mtime: fi.ModTime(), etag: base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])}
	} else if !withGzip || v.gz != nil {
		return v, nil
	}
	if withGzip && v.gz == nil {
		gz, err := gzipFile(f)
		if err != nil {
			return v, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return v, err
		}
		v.gz = gz
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.items[rel]; ok {
		c.gzipSize -= len(old.gz)
	}
	if len(c.items) >= maxCachedFiles || c.gzipSize+len(v.gz) > maxGzipCache {
		c.items, c.gzipSize = map[string]fileVersion{}, 0
	}
	c.items[rel] = v
	c.gzipSize += len(v.gz)
	return v, nil
}
