package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the known-answer vector file")

const vectorFile = "../../../testdata/vectors/client/backup-v1.json"

type vectors struct {
	Comment string      `json:"comment"`
	Keys    []keyVector `json:"recovery_keys"`
	Files   []fileVec   `json:"files"`
}

type keyVector struct {
	Key  string `json:"key"`
	Text string `json:"text"`
}

type recordVec struct {
	Type uint8  `json:"type"`
	Data string `json:"data"`
}

type fileVec struct {
	Comment string      `json:"comment"`
	Key     string      `json:"key"`
	Salt    string      `json:"salt"`
	Records []recordVec `json:"records,omitempty"`
	// Records given by a rule instead (too large to list): Type with
	// Size bytes of pattern(Seed, Size).
	Large []struct {
		Type uint8 `json:"type"`
		Seed uint8 `json:"seed"`
		Size int   `json:"size"`
	} `json:"large_records,omitempty"`
	// Outputs.
	CheckKey       string `json:"check_key"`
	KeyCheck       string `json:"key_check"`
	PayloadKey     string `json:"payload_key"`
	Header         string `json:"header"`
	FirstPlaintext string `json:"first_chunk_plaintext_sha256"`
	FirstChunk     string `json:"first_chunk_sha256"`
	File           string `json:"file,omitempty"` // the whole file, when small
	Chunks         int    `json:"chunks"`
	Size           int    `json:"file_size"`
	SHA256         string `json:"file_sha256"`
}

func keyFromHex(t *testing.T, s string) RecoveryKey {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != KeySize {
		t.Fatalf("bad key %.8q", s)
	}
	var k RecoveryKey
	copy(k.b[:], b)
	return k
}

func (f *fileVec) records(t *testing.T) []Record {
	var out []Record
	for _, r := range f.Records {
		d, err := hex.DecodeString(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Record{RecordType(r.Type), d})
	}
	for _, r := range f.Large {
		out = append(out, Record{RecordType(r.Type), pattern(r.Seed, r.Size)})
	}
	return out
}

func (f *fileVec) compute(t *testing.T) []byte {
	key := keyFromHex(t, f.Key)
	var salt [SaltSize]byte
	s, _ := hex.DecodeString(f.Salt)
	copy(salt[:], s)
	var buf bytes.Buffer
	w, err := newWriter(&buf, key, salt)
	if err != nil {
		t.Fatal(err)
	}
	recs := f.records(t)
	var plain []byte
	for _, r := range recs {
		if err := w.WriteRecord(r.Type, r.Data); err != nil {
			t.Fatal(err)
		}
		plain = append(plain, byte(r.Type), byte(len(r.Data)>>24), byte(len(r.Data)>>16), byte(len(r.Data)>>8), byte(len(r.Data)))
		plain = append(plain, r.Data...)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	signed := signedHeader(&salt)
	ck, pk := rawKeys(&key, signed)
	f.CheckKey, f.PayloadKey = hex.EncodeToString(ck), hex.EncodeToString(pk)
	f.KeyCheck = hex.EncodeToString(deriveKeys(&key, signed).keyCheck[:])
	f.Header = hex.EncodeToString(b[:HeaderSize])
	sha := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	f.FirstPlaintext = sha(plain[:min(len(plain), ChunkSize)])
	f.FirstChunk = sha(b[HeaderSize:min(len(b), HeaderSize+CipherChunkSize)])
	f.File = ""
	if len(b) <= 4096 {
		f.File = hex.EncodeToString(b)
	}
	f.Chunks = (len(b) - HeaderSize + CipherChunkSize - 1) / CipherChunkSize
	f.Size = len(b)
	sum := sha256.Sum256(b)
	f.SHA256 = hex.EncodeToString(sum[:])
	return b
}

func vectorInputs() vectors {
	seq := func(start byte, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return hex.EncodeToString(b)
	}
	v := vectors{
		Comment: "Postern backup files (protocol/SPEC.md section 14): recovery keys and their text; backups with fixed salts. " +
			"Large records are pattern(seed, size)[i] = seed ^ (i mod 256) ^ ((i >> 8) mod 256).",
		Keys: []keyVector{{Key: seq(0, 32)}, {Key: hex.EncodeToString(make([]byte, 32))}, {Key: hex.EncodeToString(bytes.Repeat([]byte{0xff}, 32))}},
		Files: []fileVec{
			{Comment: "no records: one empty final chunk", Key: seq(0, 32), Salt: seq(0x40, 32)},
			{Comment: "three small records in one final chunk", Key: seq(0, 32), Salt: seq(0x80, 32), Records: []recordVec{
				{1, hex.EncodeToString([]byte("identity"))}, {2, hex.EncodeToString([]byte("profile: Dr Ana Núñez"))}, {3, ""},
			}},
		},
	}
	big := fileVec{Comment: "two records over three chunks (the first chunk is not final)", Key: seq(0x20, 32), Salt: seq(0xc0, 32)}
	big.Large = append(big.Large, struct {
		Type uint8 `json:"type"`
		Seed uint8 `json:"seed"`
		Size int   `json:"size"`
	}{5, 7, 100000}, struct {
		Type uint8 `json:"type"`
		Seed uint8 `json:"seed"`
		Size int   `json:"size"`
	}{6, 9, 40000})
	v.Files = append(v.Files, big)
	return v
}

// TestVectors checks testdata/vectors/client/backup-v1.json (run with
// -update to rewrite it): recovery key texts, and for each backup the keys,
// the header, the first chunk and the digest of the whole file, which
// must also read back to its records.
func TestVectors(t *testing.T) {
	if *update {
		v := vectorInputs()
		for i := range v.Keys {
			v.Keys[i].Text = keyFromHex(t, v.Keys[i].Key).SecretText()
		}
		for i := range v.Files {
			v.Files[i].compute(t)
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Keys) == 0 || len(v.Files) == 0 {
		t.Fatal("no vectors")
	}
	for _, k := range v.Keys {
		key := keyFromHex(t, k.Key)
		if key.SecretText() != k.Text {
			t.Errorf("key %.8s…: text differs", k.Key)
		}
		got, err := ParseRecoveryKey(k.Text)
		if err != nil || !got.Equal(key) {
			t.Errorf("key %.8s…: text does not parse back: %v", k.Key, err)
		}
	}
	for _, f := range v.Files {
		want := f
		file := f.compute(t)
		if f.CheckKey != want.CheckKey || f.KeyCheck != want.KeyCheck || f.PayloadKey != want.PayloadKey || f.Header != want.Header ||
			f.FirstPlaintext != want.FirstPlaintext || f.FirstChunk != want.FirstChunk || f.File != want.File || f.Chunks != want.Chunks || f.Size != want.Size || f.SHA256 != want.SHA256 {
			t.Errorf("%s: computed values differ from the file", f.Comment)
		}
		got, err := readAll(file, keyFromHex(t, f.Key))
		if err != nil {
			t.Fatalf("%s: %v", f.Comment, err)
		}
		sameRecords(t, got, f.records(t))
	}
}
