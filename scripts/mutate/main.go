// Command mutate is a small mutation tester: it makes one change at a time
// to the code of the data package, the file formats and the checkpoint code
// (a flipped comparison, + for -, && for ||, a dropped call such as a Sync,
// a dropped check), runs the tests of the package with the change, and
// counts the changes the tests catch ("killed") and those they miss
// ("survived"). A survivor is a behaviour no test pins down, or a change
// that cannot alter behaviour (an equivalent mutant); docs/testing.md
// explains each.
//
// The working tree is never modified: each mutant is a file in a temporary
// folder that `go test -overlay` puts in place of the original, so the
// checkout stays usable, and another session's edits are not overwritten.
//
//	go run ./scripts/mutate                 # every target (make mutate)
//	go run ./scripts/mutate -list           # the mutants, without testing
//	go run ./scripts/mutate -files 'idx\.go' -j 2
//
// Exit status: 0 when the share of mutants killed reaches -min, 1 when it
// does not, 2 on a usage error or when a package's tests fail unmutated.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// target is a set of files to mutate and the tests that must catch the
// mutants: the package's tests, narrowed by run where the whole suite is
// slow and most of it is about other files.
type target struct {
	files []string // globs, relative to the module root
	pkg   string
	run   string // go test -run; empty for all
}

func targets() []target {
	return []target{
		{files: []string{"data/*.go"}, pkg: "./data/"},
		{files: []string{"data/fileio/*.go"}, pkg: "./data/fileio/"},
		{files: []string{"model/tensorfile/*.go"}, pkg: "./model/tensorfile/"},
		{files: []string{"model/safetensors.go", "model/checkpoint.go", "model/checkpoint_resume.go"}, pkg: "./model/",
			run: "Safetensors|Checkpoint|Resume|Prune|Save|Writable|SmallFiles"},
	}
}

// mutant is one change: bytes [from, to) of file replaced by repl.
type mutant struct {
	file     string
	line     int
	col      int
	kind     string
	desc     string
	from, to int
	repl     string
	t        *target
	// src is the file as it was when the mutant was made: from and to
	// are offsets in it, so an edit to the file during a long run
	// cannot turn the mutant into another change.
	src []byte
}

// id names a mutant in reports: stable while its file is unchanged.
func (m mutant) id() string {
	return fmt.Sprintf("%s:%d:%d\t%s\t%s", m.file, m.line, m.col, m.kind, m.desc)
}

// The kinds of mutant. Boundary mutants (< for <=) are left out by default:
// they double the run's length, and most of ours compare with a limit
// whose off-by-one the table tests pin already.
const (
	allKinds     = "negate,boundary,arithmetic,logic,incdec,drop call,drop check"
	defaultKinds = "negate,arithmetic,logic,incdec,drop call,drop check"
)

// Outcomes of running the tests on a mutant.
const (
	killed    = "KILLED"
	survived  = "SURVIVED"
	notViable = "NOT VIABLE" // does not compile
	timedOut  = "TIMED OUT"  // counted as killed: the tests noticed
)

func main() {
	list := flag.Bool("list", false, "list the mutants without running the tests")
	files := flag.String("files", "", "only mutate files whose path matches this regexp")
	jobs := flag.Int("j", 1, "mutants tested at once")
	timeoutFactor := flag.Int("timeout-factor", 5, "a mutant's tests time out after this many times the unmutated run (at least 30s)")
	minScore := flag.Float64("min", 0, "fail unless at least this percentage of the viable mutants is killed")
	report := flag.String("report", "", "also write the results, one mutant a line, to this file")
	kinds := flag.String("kinds", defaultKinds, "comma-separated kinds of mutant to make, of: "+allKinds)
	rerun := flag.String("rerun", "", "test only the mutants a previous -report lists as SURVIVED")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: mutate [-list] [-files REGEXP] [-j N] [-min PERCENT] [-report FILE]")
		os.Exit(2)
	}
	var only *regexp.Regexp
	if *files != "" {
		var err error
		if only, err = regexp.Compile(*files); err != nil {
			fmt.Fprintf(os.Stderr, "mutate: -files: %v\n", err)
			os.Exit(2)
		}
	}

	want := map[string]bool{}
	for _, k := range strings.Split(*kinds, ",") {
		if !slices.Contains(strings.Split(allKinds, ","), k) {
			fmt.Fprintf(os.Stderr, "mutate: -kinds: unknown kind %q (known: %s)\n", k, allKinds)
			os.Exit(2)
		}
		want[k] = true
	}
	var survivors map[string]bool
	if *rerun != "" {
		b, err := os.ReadFile(*rerun)
		if err != nil {
			fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
			os.Exit(2)
		}
		survivors = map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, survived+"\t"); ok {
				survivors[rest] = true
			}
		}
	}

	var ms []mutant
	ts := targets()
	for i := range ts {
		t := &ts[i]
		for _, glob := range t.files {
			paths, err := filepath.Glob(glob)
			if err != nil {
				fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
				os.Exit(2)
			}
			for _, p := range paths {
				if strings.HasSuffix(p, "_test.go") || only != nil && !only.MatchString(p) {
					continue
				}
				found, err := mutantsOf(p)
				if err != nil {
					fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
					os.Exit(2)
				}
				for _, m := range found {
					m.t = t
					if want[m.kind] && (survivors == nil || survivors[m.id()]) {
						ms = append(ms, m)
					}
				}
			}
		}
	}
	if *list {
		for _, m := range ms {
			fmt.Printf("%s:%d\t%s\t%s\n", m.file, m.line, m.kind, m.desc)
		}
		fmt.Printf("%d mutants\n", len(ms))
		return
	}

	tmp, err := os.MkdirTemp("", "mutate-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		os.Exit(2)
	}
	defer os.RemoveAll(tmp)

	// The unmutated tests must pass; their time sets the timeout.
	timeouts := map[*target]time.Duration{}
	for _, m := range ms {
		if _, ok := timeouts[m.t]; ok {
			continue
		}
		start := time.Now()
		out, err := goTest(context.Background(), m.t, "")
		if err != nil {
			fmt.Fprintf(os.Stderr, "mutate: the tests of %s fail without any mutant:\n%s\n", m.t.pkg, out)
			os.Exit(2)
		}
		timeouts[m.t] = max(30*time.Second, time.Duration(*timeoutFactor)*time.Since(start))
		fmt.Printf("baseline %s: %.1fs\n", m.t.pkg, time.Since(start).Seconds())
	}

	results := make([]string, len(ms))
	var wg sync.WaitGroup
	next := make(chan int)
	var mu sync.Mutex
	done := 0
	for w := 0; w < max(1, *jobs); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := runMutant(ms[i], filepath.Join(tmp, fmt.Sprint(i)), timeouts[ms[i].t])
				mu.Lock()
				results[i] = r
				done++
				fmt.Printf("[%d/%d] %-10s %s\n", done, len(ms), r, ms[i].id())
				mu.Unlock()
			}
		}()
	}
	for i := range ms {
		next <- i
	}
	close(next)
	wg.Wait()

	counts := map[string]int{}
	var lines []string
	for i, m := range ms {
		counts[results[i]]++
		lines = append(lines, results[i]+"\t"+m.id())
	}
	if *report != "" {
		if err := os.WriteFile(*report, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		}
	}
	fmt.Println("\nsurvivors:")
	for i, m := range ms {
		if results[i] == survived {
			fmt.Printf("  %s\n", m.id())
		}
	}
	caught := counts[killed] + counts[timedOut]
	viable := caught + counts[survived]
	score := 0.0
	if viable > 0 {
		score = 100 * float64(caught) / float64(viable)
	}
	fmt.Printf("\n%d mutants: %d killed, %d timed out, %d survived, %d not viable; %.1f%% of the viable ones caught\n",
		len(ms), counts[killed], counts[timedOut], counts[survived], counts[notViable], score)
	if score < *minScore {
		os.Exit(1)
	}
}

// runMutant writes m's file to dir and runs its target's tests over it.
func runMutant(m mutant, dir string, timeout time.Duration) string {
	mutated := append(append(append([]byte(nil), m.src[:m.from]...), m.repl...), m.src[m.to:]...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return notViable
	}
	abs, err := filepath.Abs(m.file)
	if err != nil {
		return notViable
	}
	repl := filepath.Join(dir, filepath.Base(m.file))
	overlay := filepath.Join(dir, "overlay.json")
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {abs: repl}})
	if os.WriteFile(repl, mutated, 0o644) != nil || os.WriteFile(overlay, ov, 0o644) != nil {
		return notViable
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := goTest(ctx, m.t, overlay)
	switch {
	case err == nil:
		return survived
	case ctx.Err() != nil:
		return timedOut
	case bytes.Contains(out, []byte("[build failed]")) || bytes.Contains(out, []byte("[setup failed]")):
		return notViable
	}
	return killed
}

// goTest runs the target's tests, with the overlay file when one is given
// (through GOFLAGS, so that a test that builds a binary gets it too). The
// whole process group is killed at ctx's end: go test leaves its test
// binary running otherwise.
func goTest(ctx context.Context, t *target, overlay string) ([]byte, error) {
	args := []string{"test", "-count=1", "-short", "-vet=off"}
	if t.run != "" {
		args = append(args, "-run", t.run)
	}
	cmd := exec.Command("go", append(args, t.pkg)...)
	cmd.Env = os.Environ()
	if overlay != "" {
		cmd.Env = append(cmd.Env, "GOFLAGS=-overlay="+overlay)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		return out.Bytes(), err
	case <-ctx.Done():
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-waited
		return out.Bytes(), errors.New("timed out")
	}
}

// Operator replacements: a comparison negated and its boundary moved,
// arithmetic and logic swapped.
var (
	negate   = map[token.Token]token.Token{token.LSS: token.GEQ, token.GEQ: token.LSS, token.GTR: token.LEQ, token.LEQ: token.GTR, token.EQL: token.NEQ, token.NEQ: token.EQL}
	boundary = map[token.Token]token.Token{token.LSS: token.LEQ, token.LEQ: token.LSS, token.GTR: token.GEQ, token.GEQ: token.GTR}
	arith    = map[token.Token]token.Token{token.ADD: token.SUB, token.SUB: token.ADD}
	logic    = map[token.Token]token.Token{token.LAND: token.LOR, token.LOR: token.LAND}
)

// mutantsOf finds the mutants of one file.
func mutantsOf(path string) ([]mutant, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []mutant
	add := func(pos token.Pos, end token.Pos, kind, repl string) {
		from, to := fset.Position(pos).Offset, fset.Position(end).Offset
		desc := fmt.Sprintf("%s -> %s", oneLine(string(src[from:to])), oneLine(repl))
		if repl == "" {
			desc = "drop " + oneLine(string(src[from:to]))
		}
		out = append(out, mutant{file: path, line: fset.Position(pos).Line, col: fset.Position(pos).Column, kind: kind, desc: desc, from: from, to: to, repl: repl, src: src})
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GenDecl:
			// Constants and package-level tables: a changed limit or
			// table entry is worth a mutant only where code uses it, and
			// there the use is mutated.
			return n.Tok != token.CONST && n.Tok != token.VAR
		case *ast.CallExpr:
			// Arguments of error constructors and of printing only shape
			// messages; the messages are checked where they matter, by
			// substring, and mutants inside them are noise.
			if isMessageCall(n) {
				return false
			}
		case *ast.BinaryExpr:
			if isStringLit(n.X) || isStringLit(n.Y) {
				return true
			}
			for _, tab := range []struct {
				kind string
				m    map[token.Token]token.Token
			}{{"negate", negate}, {"boundary", boundary}, {"arithmetic", arith}, {"logic", logic}} {
				if to, ok := tab.m[n.Op]; ok {
					add(n.OpPos, n.OpPos+token.Pos(len(n.Op.String())), tab.kind, to.String())
				}
			}
		case *ast.IncDecStmt:
			repl := "--"
			if n.Tok == token.DEC {
				repl = "++"
			}
			add(n.TokPos, n.TokPos+2, "incdec", repl)
		case *ast.BlockStmt:
			for _, s := range n.List {
				switch s := s.(type) {
				case *ast.ExprStmt:
					if c, ok := s.X.(*ast.CallExpr); ok && !isMessageCall(c) && !isLogCall(c) {
						add(s.Pos(), s.End(), "drop call", "")
					}
				case *ast.DeferStmt:
					add(s.Pos(), s.End(), "drop call", "")
				case *ast.IfStmt:
					// A check: an if whose body leaves the function.
					if len(s.Body.List) > 0 && s.Else == nil {
						if _, ok := s.Body.List[len(s.Body.List)-1].(*ast.ReturnStmt); ok {
							add(s.Pos(), s.End(), "drop check", "")
						}
					}
				}
			}
		}
		return true
	})
	slices.SortFunc(out, func(a, b mutant) int { return a.from - b.from })
	return out, nil
}

// isMessageCall reports calls that only build or print text:
// fmt.Errorf, errors.New, fmt.Sprintf, fmt.Fprint*, and log calls.
func isMessageCall(c *ast.CallExpr) bool {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	if !ok {
		return false
	}
	switch pkg.Name + "." + sel.Sel.Name {
	case "fmt.Errorf", "errors.New", "fmt.Sprintf", "fmt.Sprint", "fmt.Fprintf", "fmt.Fprintln", "fmt.Fprint":
		return true
	}
	return false
}

// isLogCall reports a logrus entry (log.WithField(…).Info(…)): what the
// logs say is checked by cmd/train's tests of the binary, not by the tests
// of the package that logs, so dropping one is noise here.
func isLogCall(c *ast.CallExpr) bool {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	switch sel.Sel.Name {
	case "Debug", "Debugf", "Info", "Infof", "Warn", "Warnf", "Print", "Printf":
		return true
	}
	return false
}

func isStringLit(e ast.Expr) bool {
	b, ok := e.(*ast.BasicLit)
	return ok && b.Kind == token.STRING
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 70 {
		s = s[:67] + "..."
	}
	return s
}
