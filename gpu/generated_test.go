package gpu

// Reading the generated, cuda-tagged Go files (ptx_cuda.go,
// kernels_ptx_cuda.go) and the PTX files they embed. The files carry the cuda
// build tag, so the tests read them with go/parser instead of compiling them:
// the CPU build's `go test ./...` checks them too.

import (
	"crypto/sha256"
	"encoding/hex"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// stdLibCall is one gorgonia.AddToStdLib(name, ptxVar, funcs) of a generated file.
type stdLibCall struct {
	name   string
	ptxVar string
	funcs  []string
}

// generatedFile is what a generated Go file declares.
type generatedFile struct {
	path         string
	src          []byte
	generatedTag bool                // has the "Code generated ... DO NOT EDIT." line
	consts       map[string]string   // string constants unquoted, integer ones as written
	embeds       map[string]string   // variable -> path of its //go:embed, relative to the file
	nameLists    map[string][]string // function -> the []string literal it returns
	stdLib       []stdLibCall        // AddToStdLib calls in order
}

var generatedTagRE = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

// parseGenerated reads a generated Go file with go/parser.
func parseGenerated(t *testing.T, path string) generatedFile {
	t.Helper()
	src := mustReadFile(t, path)
	f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.ParseComments)
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	g := generatedFile{
		path:         path,
		src:          src,
		generatedTag: generatedTagRE.Match(src),
		consts:       map[string]string{},
		embeds:       map[string]string{},
		nameLists:    map[string][]string{},
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.GenDecl:
			g.readGenDecl(t, d)
		case *ast.FuncDecl:
			if d.Body == nil || len(d.Body.List) != 1 {
				continue
			}
			if ret, ok := d.Body.List[0].(*ast.ReturnStmt); ok && len(ret.Results) == 1 {
				if lit, ok := ret.Results[0].(*ast.CompositeLit); ok {
					g.nameLists[d.Name.Name] = g.stringList(t, lit)
				}
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "AddToStdLib" {
			return true
		}
		if len(call.Args) != 3 {
			t.Fatalf("%s: AddToStdLib with %d arguments", path, len(call.Args))
		}
		nameLit, ok1 := call.Args[0].(*ast.BasicLit)
		ptxIdent, ok2 := call.Args[1].(*ast.Ident)
		funcsLit, ok3 := call.Args[2].(*ast.CompositeLit)
		if !ok1 || !ok2 || !ok3 {
			t.Fatalf("%s: unexpected AddToStdLib arguments", path)
		}
		name, _ := strconv.Unquote(nameLit.Value)
		g.stdLib = append(g.stdLib, stdLibCall{name: name, ptxVar: ptxIdent.Name, funcs: g.stringList(t, funcsLit)})
		return true
	})
	return g
}

func (g *generatedFile) readGenDecl(t *testing.T, d *ast.GenDecl) {
	t.Helper()
	for _, spec := range d.Specs {
		vs, ok := spec.(*ast.ValueSpec)
		if !ok {
			continue
		}
		switch d.Tok {
		case token.CONST:
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					continue
				}
				value := lit.Value
				if lit.Kind == token.STRING {
					var err error
					if value, err = strconv.Unquote(lit.Value); err != nil {
						t.Fatalf("%s: const %s: %v", g.path, name.Name, err)
					}
				}
				g.consts[name.Name] = value
			}
		case token.VAR:
			// The directive sits in the declaration's doc comment (or the
			// spec's, inside a var block).
			for _, doc := range []*ast.CommentGroup{d.Doc, vs.Doc} {
				if doc == nil {
					continue
				}
				for _, c := range doc.List {
					if pattern, ok := strings.CutPrefix(c.Text, "//go:embed "); ok && len(vs.Names) == 1 {
						g.embeds[vs.Names[0].Name] = strings.TrimSpace(pattern)
					}
				}
			}
		}
	}
}

func (g *generatedFile) stringList(t *testing.T, lit *ast.CompositeLit) []string {
	t.Helper()
	var out []string
	for _, e := range lit.Elts {
		s, ok := e.(*ast.BasicLit)
		if !ok || s.Kind != token.STRING {
			t.Fatalf("%s: non-literal name in a list", g.path)
		}
		v, _ := strconv.Unquote(s.Value)
		out = append(out, v)
	}
	return out
}

// embedded returns the content of the file that variable name embeds.
func (g *generatedFile) embedded(t *testing.T, name string) string {
	t.Helper()
	rel, ok := g.embeds[name]
	if !ok {
		t.Fatalf("%s: %s is not a //go:embed variable", g.path, name)
	}
	return string(mustReadFile(t, filepath.Join(filepath.Dir(g.path), filepath.FromSlash(rel))))
}

// embeddedPaths lists the embedded files, relative to the file, sorted.
func (g *generatedFile) embeddedPaths() []string {
	var paths []string
	for _, p := range g.embeds {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// ptxFilesIn lists the .ptx files of dir/sub, as paths relative to dir with
// forward slashes, sorted: what a generated file in dir should embed.
func ptxFilesIn(t *testing.T, dir, sub string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(sub), "*.ptx"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, m := range matches {
		rel, err := filepath.Rel(dir, m)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.ToSlash(rel))
	}
	sort.Strings(paths)
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(sub))); err != nil {
		t.Fatalf("no %s folder: %v", sub, err)
	}
	return paths
}

// sha256Hex is the hex SHA-256 of s.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// ptxEntries lists the kernel entry points a PTX module defines.
func ptxEntries(ptx string) []string {
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^\.visible \.entry ([A-Za-z_][A-Za-z0-9_]*)\(`).FindAllStringSubmatch(ptx, -1) {
		names = append(names, m[1])
	}
	return names
}

// ptxTarget is the sm_NN of a PTX module's .target line, "" if none.
func ptxTarget(ptx string) string {
	m := regexp.MustCompile(`(?m)^\.target sm_([0-9]+)\b`).FindStringSubmatch(ptx)
	if m == nil {
		return ""
	}
	return m[1]
}
