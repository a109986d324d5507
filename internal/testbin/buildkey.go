package testbin

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// A build's directory is named by the build ID that 'go list -export'
// gives package main, which costs 0.5 CPU-s (it hashes every package of
// the build), and every test process asked it again for the same
// checkout. sourceKey is what the build ID is a function of, cheaply: the
// checkout's files, the go command's settings and the flags. The build ID
// found for a key is kept beside the binaries (key-* files), so only the
// first test process after a change runs go list.

// knownSharedDir returns the directory recorded for key, if any.
func knownSharedDir(key string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(sharedRoot(), "key-"+key))
	if err != nil || len(b) == 0 {
		return "", false
	}
	return filepath.Join(sharedRoot(), string(b)), true
}

// recordSharedDir keeps dir as the directory of key's build. Written to a
// name of its own and renamed into place, a record is whole or absent.
func recordSharedDir(key, dir string) {
	path := filepath.Join(sharedRoot(), "key-"+key)
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if os.WriteFile(tmp, []byte(filepath.Base(dir)), 0o644) != nil || os.Rename(tmp, path) != nil {
		os.Remove(tmp)
	}
}

// sourceKey hashes what a build of the main package pkg in this checkout
// depends on: every file of the checkout (path, mode and content, .git
// aside; more than the build reads, which only costs a go list when a test or a
// document changes), the go command that builds it (its settings as 'go
// env' gives them with env, GOFLAGS, GOEXPERIMENT and the toolchain
// included, the go.work file if one is used, and the go executable), and
// the flags. Dependencies outside the checkout are pinned by go.sum. An
// error means no key: the caller asks go list.
//
// The checkout's part is hashed once per test process (checkoutHash): a
// process that needs several builds (leaklab, a runservice build with Go
// 1.27) walked and read the whole checkout for each.
func sourceKey(pkg string, flags, env []string) (string, error) {
	tree, err := checkoutHash()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "checkout %s\npackage %s\n", tree, pkg)
	out, err := goCommand(env, "env", "-json")
	if err != nil {
		return "", fmt.Errorf("go env: %v: %s", err, out)
	}
	var goEnv map[string]string
	if err := json.Unmarshal([]byte(out), &goEnv); err != nil {
		return "", err
	}
	// GOGCCFLAGS names a temporary directory of its own every time.
	delete(goEnv, "GOGCCFLAGS")
	settings, _ := json.Marshal(goEnv) // in key order
	fmt.Fprintf(h, "go env %s\n", settings)
	if work := goEnv["GOWORK"]; work != "" && work != "off" {
		if err := hashFile(h, work); err != nil {
			return "", err
		}
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	info, err := os.Stat(goBin)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "go %s %d %d\n", goBin, info.Size(), info.ModTime().UnixNano())
	fmt.Fprintf(h, "flags %q\n", flags)
	return hex.EncodeToString(h.Sum(nil)[:12]), nil
}

func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(h, f)
	return err
}

// checkoutHash hashes the checkout's files (path, mode and content, .git
// aside) and its root, once per test process: the tests do not change the
// module's files while they run.
var checkoutHash = sync.OnceValues(func() (string, error) {
	h := sha256.New()
	root, err := filepath.Abs(moduleRoot())
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "root %s\n", root)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			if d.Type()&fs.ModeSymlink != 0 {
				target, err := os.Readlink(path)
				fmt.Fprintf(h, "link %s %s %v\n", path, target, err)
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "file %s %d %o\n", path, info.Size(), info.Mode())
		return hashFile(h, path)
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
})
