package flightapi

import (
	"errors"
	"testing"
	"time"
)

func TestTickets(t *testing.T) {
	s, err := newSigner(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tok, id := s.issue(kindTicket, "analyst@edinburgh", now.Add(2*time.Minute))

	if got, err := s.verify(kindTicket, tok, "analyst@edinburgh", now); err != nil || got != id {
		t.Fatalf("own ticket: %q %v", got, err)
	}
	if _, err := s.verify(kindTicket, tok, "public", now); !errors.Is(err, errInvalidToken) {
		t.Errorf("another requester's ticket: %v", err)
	}
	if _, err := s.verify(kindTicket, tok, "analyst@edinburgh", now.Add(2*time.Minute)); !errors.Is(err, errExpiredToken) {
		t.Errorf("expired ticket: %v", err)
	}
	if _, err := s.verify(kindPrepared, tok, "analyst@edinburgh", now); !errors.Is(err, errInvalidToken) {
		t.Errorf("a ticket used as a prepared-statement handle: %v", err)
	}
	// Every single bit flipped is detected, including in the expiry.
	for i := range tok {
		for bit := range 8 {
			bad := append([]byte(nil), tok...)
			bad[i] ^= 1 << bit
			if _, err := s.verify(kindTicket, bad, "analyst@edinburgh", now); err == nil {
				t.Fatalf("tampered byte %d bit %d accepted", i, bit)
			}
		}
	}
	// Truncated, extended, empty.
	for _, bad := range [][]byte{tok[:len(tok)-1], append(append([]byte(nil), tok...), 0), nil} {
		if _, err := s.verify(kindTicket, bad, "analyst@edinburgh", now); !errors.Is(err, errInvalidToken) {
			t.Errorf("malformed ticket of %d bytes accepted: %v", len(bad), err)
		}
	}
	// Forged: the same layout signed with another key.
	other, _ := newSigner(nil)
	forged, _ := other.issue(kindTicket, "analyst@edinburgh", now.Add(time.Hour))
	if _, err := s.verify(kindTicket, forged, "analyst@edinburgh", now); !errors.Is(err, errInvalidToken) {
		t.Errorf("forged ticket: %v", err)
	}
	// Ids are random: no two tickets share one.
	seen := map[string]bool{}
	for range 1000 {
		_, id := s.issue(kindTicket, "x", now)
		if seen[id] {
			t.Fatal("ticket id repeated")
		}
		seen[id] = true
	}
	if _, err := newSigner([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
}
