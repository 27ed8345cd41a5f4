package client

import (
	"errors"
	"time"
	"unicode/utf8"
)

// ErrTermsVersion: AcceptTerms with an empty, overlong or non-UTF-8
// version.
var ErrTermsVersion = errors.New("client: a terms version must be 1 to 64 bytes of UTF-8")

// keyTerms is the meta record of this device's acceptance of the terms of
// use.
var keyTerms = []byte("terms")

// maxTermsVersion bounds a terms version string ("2026-12-07").
const maxTermsVersion = 64

// Terms is what this device recorded about the terms of use of the
// organisation's Postern service: the version the person accepted and
// when, and whether they withdrew that acceptance later. The record is
// this device's own, in its encrypted store: each device is set up by its
// person, who accepts the terms there (a workstation linked later asks
// again), and withdrawing on one device stops that device only.
type Terms struct {
	// Version is the version accepted last; "" if none ever was.
	Version string
	// Accepted is when Version was accepted.
	Accepted time.Time
	// Withdrawn is when the acceptance was withdrawn; zero while it
	// stands. Accepting again clears it.
	Withdrawn time.Time
}

// AcceptedCurrent reports whether the terms of version stand accepted on
// this device: that version accepted and not withdrawn since.
func (t Terms) AcceptedCurrent(version string) bool {
	return t.Version != "" && t.Version == version && t.Withdrawn.IsZero()
}

type termsRecord struct {
	V         int       `json:"v"`
	Version   string    `json:"version"`
	Accepted  time.Time `json:"accepted"`
	Withdrawn time.Time `json:"withdrawn,omitzero"`
}

// Terms returns this device's record of the terms of use (the zero Terms
// if they were never accepted here).
func (c *Client) Terms() (Terms, error) {
	var r termsRecord
	err := c.st.view(func(t *tx) error {
		_, err := t.Get(bucketMeta, t.Index(bucketMeta, keyTerms), &r)
		return err
	})
	if err != nil {
		return Terms{}, err
	}
	return Terms{Version: r.Version, Accepted: r.Accepted, Withdrawn: r.Withdrawn}, nil
}

// AcceptTerms records that the person accepted the terms of use of
// version (a non-empty string of at most 64 bytes, as the application
// that shows the terms names them) now, replacing an earlier acceptance or
// withdrawal. The library does not interpret the version: the application
// that shows the terms decides which version it needs.
func (c *Client) AcceptTerms(version string) (Terms, error) {
	if version == "" || len(version) > maxTermsVersion || !utf8.ValidString(version) {
		return Terms{}, ErrTermsVersion
	}
	r := termsRecord{V: 1, Version: version, Accepted: c.now().UTC().Truncate(time.Second)}
	err := c.st.update(func(t *tx) error {
		return t.Put(bucketMeta, t.Index(bucketMeta, keyTerms), &r)
	})
	if err != nil {
		return Terms{}, err
	}
	return Terms{Version: r.Version, Accepted: r.Accepted}, nil
}

// WithdrawTerms records that the person withdrew their acceptance of the
// terms of use now. The version and time of the acceptance are kept with
// it. Withdrawn already, or never accepted, it changes nothing.
func (c *Client) WithdrawTerms() (Terms, error) {
	var r termsRecord
	err := c.st.update(func(t *tx) error {
		found, err := t.Get(bucketMeta, t.Index(bucketMeta, keyTerms), &r)
		if err != nil || !found || r.Version == "" || !r.Withdrawn.IsZero() {
			return err
		}
		r.V, r.Withdrawn = 1, c.now().UTC().Truncate(time.Second)
		return t.Put(bucketMeta, t.Index(bucketMeta, keyTerms), &r)
	})
	if err != nil {
		return Terms{}, err
	}
	return Terms{Version: r.Version, Accepted: r.Accepted, Withdrawn: r.Withdrawn}, nil
}
