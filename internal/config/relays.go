package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"publisher/internal/valid"
)

// Relay is one of several SMTP servers (mail.smtp.relays).
type Relay struct {
	Host         string  `yaml:"host" doc:"the relay's host"`
	Port         int     `yaml:"port" doc:"its port; 0: 587 for starttls, 465 for tls, 25 for none"`
	Username     string  `yaml:"username" doc:"its SMTP AUTH user (optional)"`
	Password     string  `yaml:"password" secret:"true" doc:"its SMTP AUTH password; set it in the environment or password_file, not the file"`
	PasswordFile string  `yaml:"password_file" path:"true" doc:"a file holding its password, such as a mounted secret (line ends at the end are dropped)"`
	TLS          string  `yaml:"tls" doc:"starttls (mandatory), tls (implicit), or none (loopback hosts only)"`
	HELO         string  `yaml:"helo" doc:"name sent in HELO/EHLO (default: mail.smtp.helo, else the From domain)"`
	Connections  int     `yaml:"connections" doc:"parallel connections to this relay; publisher sends over all relays' connections together"`
	Rate         float64 `yaml:"rate" doc:"messages per second over this relay's connections; 0 = unlimited"`
}

func (r *Relay) setDefaults() {
	r.TLS = "starttls"
	r.Connections = 4
}

// UnmarshalText reads a relay from its URL, the environment's form:
// smtp://user@host:587?connections=4&rate=10&tls=starttls&helo=name&password_file=/path,
// or smtps:// for implicit TLS. A password in the URL is refused: URLs end up
// in shell histories, process listings and logs.
func (r *Relay) UnmarshalText(text []byte) error {
	const want = "want a URL such as smtp://user@host:587?connections=4"
	u, err := url.Parse(string(text))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a password
		}
		return fmt.Errorf("%v: %s", err, want)
	}
	switch u.Scheme {
	case "smtp":
	case "smtps":
		r.TLS = "tls"
	default:
		return fmt.Errorf("scheme %q: %s (or smtps:// for implicit TLS)", u.Scheme, want)
	}
	if u.Hostname() == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return errors.New(want)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			return errors.New("holds a password: give it in PUBLISHER_MAIL_SMTP_RELAYS_N_PASSWORD (N its position, from 0) or password_file, never in the URL")
		}
		r.Username = u.User.Username()
	}
	r.Host = u.Hostname()
	if p := u.Port(); p != "" {
		if r.Port, err = strconv.Atoi(p); err != nil {
			return fmt.Errorf("port %q: %s", p, want)
		}
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("query: %v", err)
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	}) {
		if len(q[k]) > 1 {
			return fmt.Errorf("%s given twice", k)
		}
		v := q.Get(k)
		switch k {
		case "tls":
			if u.Scheme == "smtps" && v != "tls" {
				return fmt.Errorf("tls=%s contradicts smtps://", v)
			}
			r.TLS = v
		case "connections":
			if r.Connections, err = strconv.Atoi(v); err != nil {
				return fmt.Errorf("connections=%s: not a whole number", v)
			}
		case "rate":
			if r.Rate, err = strconv.ParseFloat(v, 64); err != nil {
				return fmt.Errorf("rate=%s: not a number", v)
			}
		case "helo":
			r.HELO = v
		case "password_file":
			r.PasswordFile = v
		default:
			return fmt.Errorf("unknown parameter %q (known: tls, connections, rate, helo, password_file)", k)
		}
	}
	return nil
}

// Name is how logs and errors call the relay: [user@]host:port.
func (r Relay) Name() string {
	name := r.Host + ":" + strconv.Itoa(r.Port)
	if strings.Contains(r.Host, ":") {
		name = "[" + r.Host + "]:" + strconv.Itoa(r.Port)
	}
	if r.Username != "" {
		name = r.Username + "@" + name
	}
	return name
}

// RelayList is the relays to send through: mail.smtp.relays, or else the one
// server of mail.smtp.host and its keys.
func (s SMTP) RelayList() []Relay {
	if len(s.Relays) == 0 {
		return []Relay{{Host: s.Host, Port: s.Port, Username: s.Username, Password: s.Password,
			TLS: s.TLS, HELO: s.HELO, Connections: s.Connections, Rate: s.Rate}}
	}
	out := slices.Clone(s.Relays)
	for i := range out {
		if out[i].HELO == "" {
			out[i].HELO = s.HELO
		}
	}
	return out
}

// TotalConnections is how many SMTP connections may be open at once over every
// relay, and so how many messages may be on the wire.
func (s SMTP) TotalConnections() int {
	n := 0
	for _, r := range s.RelayList() {
		n += r.Connections
	}
	return n
}

// validateRelays checks mail.smtp.relays, fills each relay's port from its TLS
// policy and its password from password_file.
func (c *Config) validateRelays(bad func(key, format string, args ...any)) {
	s := &c.Mail.SMTP
	if len(s.Relays) == 0 {
		return
	}
	// A single-relay key beside relays would be silently ignored: refuse it.
	d := Defaults().Mail.SMTP
	for _, k := range []struct {
		key string
		set bool
	}{
		{"mail.smtp.host", s.Host != ""},
		{"mail.smtp.port", s.Port != d.Port},
		{"mail.smtp.username", s.Username != ""},
		{"mail.smtp.password", s.Password != ""},
		{"mail.smtp.tls", s.TLS != d.TLS},
		{"mail.smtp.connections", s.Connections != d.Connections},
		{"mail.smtp.rate", s.Rate != d.Rate},
	} {
		if k.set {
			bad(k.key, "is for a single relay; with mail.smtp.relays, give it on each relay")
		}
	}
	seen := map[string]int{}
	for i := range s.Relays {
		r := &s.Relays[i]
		key := func(field string) string { return fmt.Sprintf("mail.smtp.relays[%d].%s", i, field) }
		if r.Host == "" || strings.ContainsAny(r.Host, " /@\t\r\n") {
			bad(key("host"), "must be a host name or address, got %q", r.Host)
		}
		switch r.TLS {
		case "starttls", "tls":
		case "none":
			if c.Mail.Transport == "smtp" && !valid.LoopbackHost(r.Host) {
				bad(key("tls"), "none is only allowed for a loopback host, not %q", r.Host)
			}
		default:
			bad(key("tls"), "must be starttls, tls or none, got %q", r.TLS)
		}
		if r.Port == 0 {
			r.Port = map[string]int{"starttls": 587, "tls": 465, "none": 25}[r.TLS]
		} else if r.Port < 1 || r.Port > 65535 {
			bad(key("port"), "must be 1-65535, got %d", r.Port)
		}
		if r.Connections < 1 || r.Connections > 200 {
			bad(key("connections"), "must be 1-200, got %d", r.Connections)
		}
		if r.Rate < 0 {
			bad(key("rate"), "must not be negative")
		}
		if strings.ContainsAny(r.HELO, " \t\r\n") {
			bad(key("helo"), "must be a host name, got %q", r.HELO)
		}
		if r.PasswordFile != "" {
			if r.Password != "" {
				bad(key("password_file"), "give password or password_file, not both")
			} else if b, err := os.ReadFile(r.PasswordFile); err != nil {
				bad(key("password_file"), "%v", err)
			} else if r.Password = strings.TrimRight(string(b), "\r\n"); r.Password == "" {
				bad(key("password_file"), "%s is empty", r.PasswordFile)
			}
		}
		if r.Password != "" && r.Username == "" {
			bad(key("username"), "must be set with a password")
		}
		id := strings.ToLower(r.Name())
		if j, dup := seen[id]; dup {
			bad(key("host"), "the same relay and user as mail.smtp.relays[%d]", j)
		}
		seen[id] = i
	}
}
