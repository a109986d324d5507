package main

import (
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func TestFlagFor(t *testing.T) {
	for option, want := range map[string]string{
		"Every": "--every", "MaxLeak": "--max-leak", "ProcsPerWorker": "--procs-per-worker",
		"Connections": "-c", "Window": "--detect-window", "URL": "--url", "HTML": "--html", "BasePort": "--base-port",
	} {
		if got := flagFor(option); got != want {
			t.Errorf("flagFor(%q) = %q, want %q", option, got, want)
		}
	}
}

// Every flag the table names exists on some command, so a renamed flag
// cannot leave the option errors naming a flag nobody can type.
func TestFlagsByOptionExist(t *testing.T) {
	streams, _, _ := testStreams()
	flags := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(fl *pflag.Flag) {
			flags["--"+fl.Name] = true
			if fl.Shorthand != "" {
				flags["-"+fl.Shorthand] = true
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&factory{streams: streams}))
	for option, flag := range flagsByOption {
		if !flags[flag] {
			t.Errorf("option %s maps to %s, which no command has", option, flag)
		}
	}
	if !flags[flagFor("MaxLeak")] {
		t.Error("the kebab-case rule gives --max-leak, which no command has")
	}
}
