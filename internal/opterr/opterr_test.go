package opterr

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func kebabFlag(name string) string { return "--" + strings.ToLower(name) }

func TestReword(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"the option first", Errorf("Every", "Every must be more than zero"), "--every must be more than zero"},
		{"wrapped", fmt.Errorf("collect: %w", Errorf("Every", "Every must be more than zero")), "collect: --every must be more than zero"},
		{"two options", Combination([]string{"For", "Every"}, "For (1s) is shorter than Every (2s)"), "--for (1s) is shorter than --every (2s)"},
		{"only whole words", Errorf("For", "MaxFor and For-x and Forward stay; For goes"), "MaxFor and For-x and Forward stay; --for goes"},
		{"not in a quoted value", Errorf("Kind", `Kind "Kind": no such kind`), `--kind "Kind": no such kind`},
		{"a name in plain words", Errorf("type", `unknown profile type "x"`), `unknown profile type "x"`},
		{"a neutral message", Errorf("Type", `unknown profile type "x"`), `unknown profile type "x"`},
		{"not an option error", errors.New("Every must be more than zero"), "Every must be more than zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Reword(tc.err, tc.err.Error(), kebabFlag); got != tc.want {
				t.Errorf("Reword = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIs(t *testing.T) {
	if !Is(fmt.Errorf("x: %w", Errorf("A", "A bad"))) || Is(errors.New("A bad")) {
		t.Error("Is does not tell a wrapped option error from another error")
	}
}
