//go:build !linux

package osfile

import (
	"os"
	"path/filepath"
)

type statter struct {
	root   string
	statFn func(string) (os.FileInfo, error)
}

func newStatter(root string, follow bool) (*statter, error) {
	s := &statter{root: root, statFn: os.Lstat}
	if follow {
		s.statFn = os.Stat
	}
	return s, nil
}

func (s *statter) stat(name string) (Stat, error) {
	info, err := s.statFn(filepath.Join(s.root, filepath.FromSlash(name)))
	if err != nil {
		return Stat{}, err
	}
	return Stat{Size: info.Size(), ModTime: info.ModTime(), Mode: uint32(info.Mode())}, nil
}

func (s *statter) close() {}
