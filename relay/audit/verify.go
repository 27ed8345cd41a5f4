package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/postern/postern/keys"
)

// Report summarises a log that verified.
type Report struct {
	Entries  int    // entries in the log
	Heads    int    // signed heads among them
	LastSeq  uint64 // sequence number of the last entry
	Unsigned int    // entries after the last signed head: chained, not yet signed
	// Fingerprint is the fingerprint of the key the heads were checked
	// with: compare it with one obtained out of band.
	Fingerprint keys.Fingerprint
}

// VerifyDir verifies dir/LogFile against dir/HeadFile (if present) with
// pub, or, if pub is nil, with the key in dir/PublicKeyFile.
func VerifyDir(dir string, pub *keys.SigningPublicKey) (Report, error) {
	if pub == nil {
		var err error
		if pub, err = ReadPublicKey(filepath.Join(dir, PublicKeyFile)); err != nil {
			return Report{}, fmt.Errorf("audit: relay public key: %w", err)
		}
	}
	log, err := os.ReadFile(filepath.Join(dir, LogFile))
	if err != nil {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	head, err := os.ReadFile(filepath.Join(dir, HeadFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Report{}, fmt.Errorf("audit: %w", err)
	}
	return Verify(splitLines(log), bytes.TrimSuffix(head, []byte{'\n'}), pub)
}

// splitLines splits at '\n'; a last line without one is kept (a torn
// write is then reported as an edit).
func splitLines(b []byte) [][]byte {
	if len(b) == 0 {
		return nil
	}
	lines := bytes.Split(b, []byte{'\n'})
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Verify checks a log, with pub (required), given as its lines (without newlines) and lastHead,
// the newest signed head line kept apart from the log (empty if none). It
// returns an *Error naming the first entry that was edited, removed or
// reordered, or the first head whose signature fails, or entries cut off
// the end (lastHead is past the log's end); nil and a Report otherwise.
func Verify(lines [][]byte, lastHead []byte, pub *keys.SigningPublicKey) (Report, error) {
	rep := Report{Fingerprint: pub.Fingerprint()}
	type parsed struct {
		e    entry
		hash [32]byte
		err  error
	}
	ps := make([]parsed, len(lines))
	for i, l := range lines {
		e, h, err := parseEntry(l)
		ps[i] = parsed{e, h, err}
	}
	var prev [32]byte
	var lastGoodHead uint64
	for i, p := range ps {
		line, want := i+1, uint64(i+1)
		if p.err != nil {
			return rep, tampered(Edited, want, line, "entry %d (line %d) was edited: it does not parse (%v)", want, line, p.err)
		}
		e := p.e
		if hex.EncodeToString(p.hash[:]) != e.Hash {
			return rep, tampered(Edited, e.Seq, line, "entry %d (line %d) was edited: its hash does not match its content", e.Seq, line)
		}
		if e.Seq != want {
			for j := i + 1; j < len(ps); j++ {
				if ps[j].err == nil && ps[j].e.Seq == want {
					return rep, tampered(Reordered, e.Seq, line, "entry %d (line %d) is out of order: entry %d is at line %d", e.Seq, line, want, j+1)
				}
			}
			if e.Seq > want {
				n, v := span(want, e.Seq-1)
				return rep, tampered(Removed, want, line, "%s %s removed: line %d holds entry %d", n, v, line, e.Seq)
			}
			return rep, tampered(Reordered, e.Seq, line, "entry %d (line %d) repeats or comes after a later entry (entry %d expected)", e.Seq, line, want)
		}
		if e.Prev != hex.EncodeToString(prev[:]) {
			return rep, tampered(Rechained, e.Seq, line, "entry %d (line %d) does not follow entry %d: entries before it were removed, replaced or reordered", e.Seq, line, e.Seq-1)
		}
		if e.Event == EventHead {
			if !headVerifies(e, prev, pub) {
				return rep, tampered(BadSignature, e.Seq, line, "the head at entry %d (line %d) has a bad signature: entries %d to %d were rewritten, or the head is forged", e.Seq, line, lastGoodHead+1, e.Seq)
			}
			lastGoodHead = e.Seq
			rep.Heads++
		}
		prev = p.hash
		rep.Entries++
		rep.LastSeq = e.Seq
	}
	rep.Unsigned = int(rep.LastSeq - lastGoodHead)
	if len(lastHead) == 0 {
		return rep, nil
	}
	e, h, err := parseEntry(lastHead)
	var hp [32]byte
	if err == nil && e.Seq > 0 {
		hp, err = hex32(e.Prev)
	}
	if err != nil || e.Event != EventHead || hex.EncodeToString(h[:]) != e.Hash || !headVerifies(e, hp, pub) {
		return rep, tampered(BadSignature, e.Seq, 0, "the saved head (%s) does not verify: it was edited or forged", HeadFile)
	}
	if e.Seq > rep.LastSeq {
		n, v := span(rep.LastSeq+1, e.Seq)
		return rep, tampered(Removed, rep.LastSeq+1, len(lines)+1, "%s %s cut off the end: the log ends at entry %d (line %d) but the signed head in %s is entry %d", n, v, rep.LastSeq, len(lines), HeadFile, e.Seq)
	}
	if ps[e.Seq-1].e.Hash != e.Hash {
		return rep, tampered(Rechained, e.Seq, int(e.Seq), "entry %d (line %d) is not the signed head kept in %s: the log was rewritten", e.Seq, e.Seq, HeadFile)
	}
	return rep, nil
}

// span names entries a to b and the past tense verb that agrees.
func span(a, b uint64) (noun, verb string) {
	if a == b {
		return fmt.Sprintf("entry %d", a), "was"
	}
	return fmt.Sprintf("entries %d to %d", a, b), "were"
}

func tampered(p Problem, seq uint64, line int, format string, args ...any) *Error {
	return &Error{Problem: p, Seq: seq, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func hex32(s string) ([32]byte, error) {
	var out [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return out, errors.New("bad hash")
	}
	copy(out[:], b)
	return out, nil
}

func headVerifies(e entry, prev [32]byte, pub *keys.SigningPublicKey) bool {
	s, _ := e.Fields["sig"].(string)
	sig, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return false
	}
	return pub.Verify(HeadContext, headMessage(e.Seq, prev, e.Time), sig) == nil
}

// BundleFormat names the export bundle's format.
const BundleFormat = "postern.v1 audit-bundle"

// Bundle is what `postern-relay audit export` writes for reviewers: the
// relay's public key and the log, self-contained.
type Bundle struct {
	Format      string   `json:"format"`      // BundleFormat
	PublicKey   string   `json:"public_key"`  // EncodePublicKey
	Fingerprint string   `json:"fingerprint"` // hex of the key's fingerprint (SPEC.md section 8)
	Head        string   `json:"head,omitempty"`
	Entries     []string `json:"entries"` // the log's lines, verbatim
}

// Export writes the bundle of the log in dir to w (indented JSON).
func Export(dir string, w io.Writer) error {
	pub, err := ReadPublicKey(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		return fmt.Errorf("audit: relay public key: %w", err)
	}
	log, err := os.ReadFile(filepath.Join(dir, LogFile))
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	head, err := os.ReadFile(filepath.Join(dir, HeadFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("audit: %w", err)
	}
	f := pub.Fingerprint()
	b := Bundle{Format: BundleFormat, PublicKey: EncodePublicKey(pub), Fingerprint: hex.EncodeToString(f[:]),
		Head: string(bytes.TrimSuffix(head, []byte{'\n'})), Entries: []string{}}
	for _, l := range splitLines(log) {
		b.Entries = append(b.Entries, string(l))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(b)
}

// VerifyBundle verifies a bundle read from r. With pub nil it uses the
// bundle's own key: then compare Report.Fingerprint with one obtained out
// of band, since whoever made the bundle chose that key.
func VerifyBundle(r io.Reader, pub *keys.SigningPublicKey) (Report, error) {
	var b Bundle
	if err := json.NewDecoder(r).Decode(&b); err != nil {
		return Report{}, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	if b.Format != BundleFormat {
		return Report{}, fmt.Errorf("%w: format %q, want %q", ErrBundle, b.Format, BundleFormat)
	}
	own, err := ParsePublicKey(b.PublicKey)
	if err != nil {
		return Report{}, fmt.Errorf("%w: public key: %v", ErrBundle, err)
	}
	if pub == nil {
		pub = own
	}
	lines := make([][]byte, len(b.Entries))
	for i, s := range b.Entries {
		lines[i] = []byte(s)
	}
	return Verify(lines, []byte(b.Head), pub)
}
