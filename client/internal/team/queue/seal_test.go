package queue

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/postern/postern/protocol"
)

func TestToken(t *testing.T) {
	k1, k2 := mustClaimKey(t), mustClaimKey(t)
	if k1.Token(conv(1)) != k1.Token(conv(1)) {
		t.Fatal("token not deterministic")
	}
	if k1.Token(conv(1)) == k1.Token(conv(2)) {
		t.Fatal("two conversations share a token")
	}
	if k1.Token(conv(1)) == k2.Token(conv(1)) {
		t.Fatal("two claim keys give one token")
	}
	again, err := ClaimKeyFromSecret(k1.SecretBytes())
	if err != nil || !again.Equal(k1) || again.Token(conv(1)) != k1.Token(conv(1)) {
		t.Fatalf("claim key does not survive SecretBytes: %v", err)
	}
	if k1.Equal(k2) {
		t.Fatal("two random claim keys are Equal")
	}
	for _, b := range [][]byte{nil, make([]byte, KeySize), make([]byte, KeySize-1), make([]byte, KeySize+1)} {
		if _, err := ClaimKeyFromSecret(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("ClaimKeyFromSecret(%d bytes): %v, want ErrInvalid", len(b), err)
		}
		if _, err := TeamKeyFromSecret(1, b); !errors.Is(err, ErrInvalid) {
			t.Errorf("TeamKeyFromSecret(%d bytes): %v, want ErrInvalid", len(b), err)
		}
	}
}

func TestKeysRedacted(t *testing.T) {
	ck, tk := mustClaimKey(t), mustTeamKey(t, 7)
	for _, s := range []string{fmt.Sprint(ck), fmt.Sprintf("%v %+v %s", tk, tk, tk), fmt.Sprint(mustSpace(t, testSpaceID, ck, tk)), fmt.Sprintf("%+v", *mustSpace(t, testSpaceID, ck, tk))} {
		for _, secret := range [][]byte{ck.SecretBytes(), tk.SecretBytes()} {
			dec := fmt.Sprint(secret[:4]) // "[a b c d]"
			if bytes.Contains([]byte(s), secret) || bytes.Contains([]byte(s), []byte(fmt.Sprintf("%x", secret[:4]))) ||
				bytes.Contains([]byte(s), []byte(dec[1:len(dec)-1])) {
				t.Fatalf("printing shows a key: %s", s)
			}
		}
	}
}

func TestSealOpen(t *testing.T) {
	s := newTestSpace(t)
	for _, v := range sampleValues() {
		sealed := mustSeal(t, s, conv(1), v)
		if len(sealed) != SealedValueSize {
			t.Fatalf("%s value sealed to %d bytes, want %d", v.State, len(sealed), SealedValueSize)
		}
		got, err := s.Open(conv(1), sealed)
		if err != nil || got != v {
			t.Fatalf("Open: %+v, %v; want %+v", got, err, v)
		}
	}
	a, b := mustSeal(t, s, conv(1), sampleValues()[2]), mustSeal(t, s, conv(1), sampleValues()[2])
	if bytes.Equal(a, b) {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	if _, err := s.Seal(conv(1), Value{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Seal of an invalid value: %v", err)
	}
}

// TestSealBinding: a value opens only for its space, its conversation's
// token and its team key; moved or altered it fails, and Open says why
// without showing anything of it.
func TestSealBinding(t *testing.T) {
	ck, k0, k1 := mustClaimKey(t), mustTeamKey(t, 0), mustTeamKey(t, 1)
	s := mustSpace(t, testSpaceID, ck, k1, k0)
	sealed := mustSeal(t, s, conv(1), sampleValues()[3])

	otherSpace := testSpaceID
	otherSpace[15] ^= 1
	otherKey, _ := TeamKeyFromSecret(1, mustTeamKey(t, 1).SecretBytes())
	cases := []struct {
		name string
		s    *Space
		c    ConversationID
		want error
	}{
		{"another conversation", s, conv(2), ErrDecrypt},
		{"another space", mustSpace(t, otherSpace, ck, k1, k0), conv(1), ErrDecrypt},
		{"another claim key", mustSpace(t, testSpaceID, mustClaimKey(t), k1, k0), conv(1), ErrDecrypt},
		{"another key of the same epoch", mustSpace(t, testSpaceID, ck, otherKey, k0), conv(1), ErrDecrypt},
		{"epoch not held", mustSpace(t, testSpaceID, ck, k0), conv(1), ErrUnknownKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.s.Open(tc.c, sealed); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("every byte changed", func(t *testing.T) {
		for i := range sealed {
			b := bytes.Clone(sealed)
			b[i] ^= 0x01
			_, err := s.Open(conv(1), b)
			if err == nil {
				t.Fatalf("byte %d changed: opened", i)
			}
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("byte %d changed: %v", i, err)
			}
		}
	})
	t.Run("lengths", func(t *testing.T) {
		for _, n := range []int{0, 1, SealedValueSize - 1, SealedValueSize + 1, protocol.MaxClaimValue} {
			if _, err := s.Open(conv(1), make([]byte, n)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%d bytes: %v, want ErrMalformed", n, err)
			}
		}
	})
	t.Run("earlier epoch opens", func(t *testing.T) {
		old := mustSpace(t, testSpaceID, ck, k0)
		v := sampleValues()[4]
		got, err := s.Open(conv(1), mustSeal(t, old, conv(1), v))
		if err != nil || got != v {
			t.Fatalf("a value of epoch 0 after the key moved to epoch 1: %+v, %v", got, err)
		}
	})
	t.Run("valid ciphertext of an invalid value", func(t *testing.T) {
		// What a staff member with the key could write: it opens, but is
		// not a value.
		bad := Value{State: Claimed} // no owner
		var nonce [nonceSize]byte
		b := sealValue(k1, testSpaceID, ck.Token(conv(1)), nonce, bad)
		if _, err := s.Open(conv(1), b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
	})
}

func TestNewSpace(t *testing.T) {
	ck, k0 := mustClaimKey(t), mustTeamKey(t, 0)
	dup := mustTeamKey(t, 0)
	for _, tc := range []struct {
		name    string
		ck      ClaimKey
		cur     TeamKey
		earlier []TeamKey
	}{
		{"zero claim key", ClaimKey{}, k0, nil},
		{"zero team key", ck, TeamKey{}, nil},
		{"zero earlier key", ck, mustTeamKey(t, 1), []TeamKey{{}}},
		{"two keys of one epoch", ck, k0, []TeamKey{dup}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSpace(testSpaceID, tc.ck, tc.cur, tc.earlier...); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestOpenRegister(t *testing.T) {
	s := newTestSpace(t)
	init := Initial(5, true)
	r, err := s.OpenRegister(conv(1), 0, nil, init)
	if err != nil || r.Version != 0 || r.Value != init || r.Sealed != nil {
		t.Fatalf("version 0: %+v, %v", r, err)
	}
	if _, err := s.OpenRegister(conv(1), 0, []byte{1}, init); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a value at version 0: %v", err)
	}
	if _, err := s.OpenRegister(conv(1), 0, nil, sampleValues()[2]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a claimed initial value: %v", err)
	}
	if _, err := s.OpenRegister(conv(1), 3, nil, init); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no value at version 3: %v", err)
	}
	sealed := mustSeal(t, s, conv(1), sampleValues()[2])
	r, err = s.OpenRegister(conv(1), 3, sealed, init)
	if err != nil || r.Version != 3 || r.Value != sampleValues()[2] || !bytes.Equal(r.Sealed, sealed) {
		t.Fatalf("version 3: %+v, %v", r, err)
	}
	sealed[0] = 9 // the register keeps its own copy
	if r.Sealed[0] != valueFormat {
		t.Fatal("OpenRegister kept the caller's slice")
	}
}
