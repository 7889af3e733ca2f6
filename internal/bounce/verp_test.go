package bounce

import "testing"

func TestVERPRoundTrip(t *testing.T) {
	for _, reader := range []string{"ana@example.org", "first.last@sub.example.co.uk", "a+tag@example.org", "x=y@example.org", "jörg@bücher.example"} {
		path, ok := deskVERP.Encode(reader)
		if !ok {
			t.Errorf("Encode(%q) refused", reader)
			continue
		}
		back, ok := deskVERP.Decode(path)
		if !ok || back != reader {
			t.Errorf("%q -> %q -> %q, %v", reader, path, back, ok)
		}
	}
	if got, _ := deskVERP.Encode("ana@example.org"); got != "bounces+ana=example.org@desk.example.org" {
		t.Errorf("Encode = %q", got)
	}
}

func TestVERPRefuses(t *testing.T) {
	if _, ok := deskVERP.Encode(`"two words"@example.org`); ok {
		t.Error("a quoted local part was encoded")
	}
	if _, ok := deskVERP.Encode("a-very-long-local-part-that-goes-on-and-on@a-long-domain.example.org"); ok {
		t.Error("a tagged local part over 64 octets was encoded")
	}
	if _, ok := (VERP{}).Encode("ana@example.org"); ok {
		t.Error("the zero VERP encoded")
	}
	for _, addr := range []string{
		"bounces@desk.example.org",                 // no tag
		"bounces+ana=example.org@other.example",    // another domain
		"digest+ana=example.org@desk.example.org",  // another mailbox
		"bounces+ana@desk.example.org",             // no =
		"bounces+=example.org@desk.example.org",    // empty local part
		"bounces+ana=@desk.example.org",            // empty domain
		"bounces+a b=example.org@desk.example.org", // not an address
		"",
	} {
		if got, ok := deskVERP.Decode(addr); ok {
			t.Errorf("Decode(%q) = %q", addr, got)
		}
	}
	// Case does not matter in the fixed parts, and angle brackets are dropped.
	if got, ok := deskVERP.Decode("<Bounces+Ana=Example.ORG@DESK.example.org>"); !ok || got != "ana@example.org" {
		t.Errorf("Decode = %q, %v", got, ok)
	}
	for _, bad := range []string{"not an address", "bounces+x@desk.example.org", "a=b@desk.example.org"} {
		if _, err := NewVERP(bad); err == nil {
			t.Errorf("NewVERP(%q) accepted", bad)
		}
	}
}
