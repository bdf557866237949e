package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fill takes every admission slot of g, as requests busy reading or
// decoding would, and returns how to free one.
func fill(g *imageGate) (release func()) {
	for range cap(g.admit) {
		g.admit <- struct{}{}
	}
	return g.leave
}

func TestServeGateEnter(t *testing.T) {
	cases := []struct {
		name    string
		full    bool          // every admission slot taken
		free    bool          // one freed after the request starts waiting
		gone    bool          // the client has gone away
		wait    time.Duration // how long the gate lets a request wait
		wantErr string        // in the 503's message; "" to be admitted
	}{
		{name: "a slot free", wait: time.Hour},
		{name: "all slots held", full: true, wait: 10 * time.Millisecond, wantErr: "busy"},
		{name: "a slot freed while waiting", full: true, free: true, wait: time.Hour},
		{name: "client gone", full: true, gone: true, wait: time.Hour, wantErr: "cancelled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newImageGate(1, c.wait)
			if c.full {
				release := fill(g)
				if c.free {
					// Freed before or during the wait, the request gets it:
					// the wait is an hour.
					go release()
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			if c.gone {
				cancel()
			}
			defer cancel()
			err := g.enter(ctx)
			var e *apiError
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.wantErr == "":
				g.leave()
			case !errors.As(err, &e) || e.status != http.StatusServiceUnavailable || !strings.Contains(e.msg, c.wantErr):
				t.Errorf("error %v, want a 503 saying %q", err, c.wantErr)
			}
			held := 0 // by the test
			if c.full {
				held = cap(g.admit)
			}
			if c.free {
				held--
			}
			if len(g.admit) != held {
				t.Errorf("%d slots held after the request, want the test's %d", len(g.admit), held)
			}
		})
	}
}

func TestServeGateSizes(t *testing.T) {
	for _, decode := range []int{1, 4} {
		g := newImageGate(decode, admitWait)
		if cap(g.decode) != decode || cap(g.admit) != 2*decode+extraAdmitted {
			t.Errorf("newImageGate(%d): %d decode and %d admission slots, want %d and %d", decode, cap(g.decode), cap(g.admit), decode, 2*decode+extraAdmitted)
		}
	}
	if n := defaultDecodeSlots(); n < 1 || n > maxDecodeSlots {
		t.Errorf("defaultDecodeSlots() = %d, want 1 to %d", n, maxDecodeSlots)
	}
}
