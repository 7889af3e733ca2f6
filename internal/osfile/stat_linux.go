package osfile

import (
	"io/fs"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// statter stats names relative to a folder it holds open: fstatat(2) from that
// folder walks one or two path components where a full path walks them all,
// and fills a stack value where os.Stat allocates a FileInfo.
type statter struct {
	root  string
	fd    int
	flags int
}

func newStatter(root string, follow bool) (*statter, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	s := &statter{root: root, fd: fd}
	if !follow {
		s.flags = unix.AT_SYMLINK_NOFOLLOW
	}
	return s, nil
}

func (s *statter) stat(name string) (Stat, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(s.fd, name, &st, s.flags)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			op := "stat"
			if s.flags != 0 {
				op = "lstat"
			}
			return Stat{}, &fs.PathError{Op: op, Path: filepath.Join(s.root, name), Err: err}
		}
		return Stat{Size: st.Size, ModTime: time.Unix(st.Mtim.Unix()), Mode: st.Mode}, nil
	}
}

func (s *statter) close() { _ = unix.Close(s.fd) }
