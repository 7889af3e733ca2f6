package web

import (
	"context"
	"errors"

	"publisher/internal/mail"
)

// MailTransport is the part of mail.Transport the confirmation email needs.
type MailTransport interface {
	NewSender(ctx context.Context) (mail.Sender, error)
}

// TransportMailer sends each message over a fresh Sender of its transport:
// confirmation emails are rare, so a connection is not worth keeping open.
type TransportMailer struct {
	Transport MailTransport
}

// Send sends m and closes the connection.
func (t TransportMailer) Send(ctx context.Context, m *mail.Message) error {
	sender, err := t.Transport.NewSender(ctx)
	if err != nil {
		return err
	}
	err = sender.Send(ctx, m)
	return errors.Join(err, sender.Close())
}
