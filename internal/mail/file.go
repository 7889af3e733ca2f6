package mail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FileTransport writes each message to Dir as <message id>.eml. Writing the
// same message again replaces the file, so a resumed run does not leave
// duplicates in the outbox.
type FileTransport struct {
	Dir  string
	DKIM *DKIM
}

// NewSender creates Dir if needed.
func (t *FileTransport) NewSender(ctx context.Context) (Sender, error) {
	if t.Dir == "" {
		return nil, fmt.Errorf("file transport: outbox directory is not set")
	}
	if err := os.MkdirAll(t.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("file transport: %w", err)
	}
	return &fileSender{t: t}, nil
}

type fileSender struct{ t *FileTransport }

func (s *fileSender) Send(ctx context.Context, m *Message) error {
	fail := func(stage Stage, class Class, err error) error {
		e := &Error{Recipient: m.To.Email, MessageID: m.MessageID, Stage: stage, Class: class, Err: err}
		e.Cause = errorCause(e)
		return e
	}
	raw, err := Render(m, s.t.DKIM)
	if err != nil {
		return fail(StageBuild, Permanent, err)
	}
	if err := sendable(ctx); err != nil {
		return fail(StageWrite, Temporary, err)
	}
	path := filepath.Join(s.t.Dir, FileName(m.MessageID))
	tmp, err := os.CreateTemp(s.t.Dir, ".tmp-*.eml")
	if err != nil {
		return fail(StageWrite, Temporary, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fail(StageWrite, Temporary, fmt.Errorf("%s: %w", tmp.Name(), err))
	}
	// Synced before the rename so the ledger never records as sent a file
	// that a power cut would leave empty.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fail(StageWrite, Temporary, fmt.Errorf("%s: %w", tmp.Name(), err))
	}
	if err := tmp.Close(); err != nil {
		return fail(StageWrite, Temporary, fmt.Errorf("%s: %w", tmp.Name(), err))
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fail(StageWrite, Temporary, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail(StageWrite, Temporary, err)
	}
	return nil
}

func (s *fileSender) Close() error { return nil }

// FileName is the outbox file name for a message id: the id itself when it
// is made only of safe characters, otherwise a cleaned id plus a hash of the
// original, so two ids never share a file.
func FileName(messageID string) string {
	const maxLen = 120
	var b strings.Builder
	changed := false
	for i := 0; i < len(messageID); i++ {
		c := messageID[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.' || c == '-' || c == '_' || c == '@' || c == '+' || c == '=':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			changed = true
		}
	}
	name := b.String()
	if strings.HasPrefix(name, ".") || name == "" {
		name = "_" + name
		changed = true
	}
	if len(name) > maxLen {
		name = name[:maxLen]
		changed = true
	}
	if changed {
		sum := sha256.Sum256([]byte(messageID))
		name += "-" + hex.EncodeToString(sum[:6])
	}
	return name + ".eml"
}
