package cycle

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"publisher/internal/store"
)

// settingInstallationID names the store setting that holds this
// installation's random id, recorded by the first run that sends.
const settingInstallationID = "installation_id"

// installationID is this installation's id: recorded once in the store and
// kept from then on (a reinstall, with a new database, gets a new one). With
// record false (a preview, a dry run: nothing is written) an installation that
// has none yet gets "".
func (r *Runner) installationID(ctx context.Context, record bool) (string, error) {
	if id := r.install.Load(); id != nil {
		return *id, nil
	}
	var (
		id  string
		err error
	)
	if record {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id, err = r.store.SetSetting(ctx, settingInstallationID, hex.EncodeToString(b[:]), true, r.now())
	} else if id, err = r.store.Setting(ctx, settingInstallationID); errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("installation id: %w", err)
	}
	r.install.Store(&id)
	return id, nil
}

// lowerBase32 spells a Message-ID's local part: letters and digits only.
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// messageID is the Message-ID of one delivery, on the From domain. It is the
// same for every attempt of the delivery, so a bounce of any attempt finds it
// (the ledger records it), and no other message anywhere gets it: it is a hash
// of the installation's id (another installation, or a reinstall, has its own),
// the digest and subscriber ids, and when the delivery was planned, which
// tells apart the deliveries a restored backup or a copy of the database plans
// again under ids it once gave to others. Nothing of the list (its size, row
// numbers) can be read from it.
func messageID(installation string, digestID, subscriberID int64, planned time.Time, domain string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s|%d|%d|%d", installation, digestID, subscriberID, planned.UnixMicro()))
	return "digest." + lowerBase32.EncodeToString(sum[:20]) + "@" + strings.ToLower(domain)
}
