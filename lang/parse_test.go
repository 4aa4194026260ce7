package lang

import (
	"errors"
	"strings"
	"testing"

	"github.com/alecthomas/participle/v2/lexer"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLexer(t *testing.T) {
	sym := map[lexer.TokenType]string{}
	for name, typ := range tokenSymbols() {
		sym[typ] = name
	}
	tests := []struct {
		src  string
		want string // Type:Value, space separated; a newline in the source as NL
	}{
		{"job a # c\n", "Keyword:job Ident:a NL EOF:"},
		{"env local { a = 1 # c\n b = 'x#y' }", "Keyword:env Ident:local Bracket:{ Ident:a Punct:= Int:1 NL Ident:b Punct:= String:'x#y' Bracket:} Newline: EOF:"},
		{"params map(1..3, # * 2) # c", "Keyword:params Ident:map Bracket:( Int:1 Punct:. Punct:. Int:3 Comma:, Pointer:# Punct:* Int:2 Bracket:) Newline: EOF:"},
		{"params x([\n #index, #acc // c\n /* c\n c */ ])", "Keyword:params Ident:x Bracket:( Bracket:[ Pointer:#index Comma:, Pointer:#acc Bracket:] Bracket:) Newline: EOF:"},
		// A list right after params is one token, whatever it holds.
		{"params [{x: 1}, # c\n {x: [2]}] # c", "Keyword:params ListLit:[{x: 1}, # c\n {x: [2]}] Newline: EOF:"},
		{"timeout 1.5m\nretries 2", "Keyword:timeout Duration:1.5m NL Keyword:retries Int:2 Newline: EOF:"},
		{"x 1h30m 500ms 2.5 1e3 0x1F 30 min", "Ident:x Duration:1h30m Duration:500ms Float:2.5 Float:1e3 Int:0x1F Int:30 Ident:min Newline: EOF:"},
		{"func f(func) = func\r\n", "Keyword:func Ident:f Bracket:( Ident:func Bracket:) Punct:= Ident:func NL EOF:"},
		{"é\x00", "Other:é Other:\x00 Newline: EOF:"},
	}
	for _, tt := range tests {
		toks, err := lexAll("x.mf", []byte(tt.src))
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		var got []string
		for _, tok := range toks {
			if tok.Type == tokNewline && tok.Value == "\n" {
				got = append(got, "NL")
				continue
			}
			got = append(got, sym[tok.Type]+":"+tok.Value)
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("%q:\n got %s\nwant %s", tt.src, g, tt.want)
		}
	}
}

func TestParseTree(t *testing.T) {
	src := "job j\nenv ec2 w {\n  hosts = 2, spot = true\n}\nfunc f(x, y) = x + [y,\n  1]\nship \"a\", \"b\"\nretries 3\nfoo bar\n"
	f, err := Parse("x.mf", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	tok := func(v string) *exprPart { return &exprPart{Tok: &exprTok{Value: v}} }
	want := &fileSyntax{Stmts: []*stmt{
		{Job: &jobStmt{Name: &ident{Name: "j"}}},
		{Env: &envStmt{Kind: &ident{Name: "ec2"}, Name: &ident{Name: "w"}, Items: []envItem{
			{Newline: true},
			{Setting: &setting{Key: &ident{Name: "hosts"}, Value: &value{Int: str("2")}}},
			{Comma: true},
			{Setting: &setting{Key: &ident{Name: "spot"}, Value: &value{Ident: str("true")}}},
			{Newline: true},
		}}},
		{Func: &funcStmt{Name: &ident{Name: "f"}, Params: []*ident{{Name: "x"}, {Name: "y"}}, Body: &exprNode{
			Parts: []*exprPart{tok("x"), tok("+"), {Group: &exprGroup{Open: "[", Inner: []*exprItem{
				{Tok: &exprTok{Value: "y"}}, {Comma: &exprComma{Value: ","}}, {Tok: &exprTok{Value: "1"}},
			}, Close: &exprTok2{Value: "]"}}}},
			text: "x + [y,\n  1]",
		}}},
		{Ship: &shipStmt{Paths: []*stringLit{{Value: `"a"`}, {Value: `"b"`}}}},
		{Retries: &optionStmt{Value: &value{Int: str("3")}}},
		{Unknown: &unknownStmt{Items: []*exprItem{{Tok: &exprTok{Value: "foo"}}, {Tok: &exprTok{Value: "bar"}}}}},
	}}
	opts := cmp.Options{cmpopts.IgnoreTypes(Pos{}), cmp.AllowUnexported(exprNode{})}
	if diff := cmp.Diff(want, f.syntax, opts); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	if got := f.syntax.Stmts[2].Func.Body.Pos; got.Line != 5 || got.Column != 16 {
		t.Errorf("body at %s, want 5:16", got)
	}
}

// TestEveryProblem checks that Check reports all the problems of a file, in file order.
func TestEveryProblem(t *testing.T) {
	src := `env local { worker = 2 }
env ec2 { hosts = "3", s3_path = "s3://bkt/p", ami = "ami-1" }
func f(x, x) = x + z
ship "../up.txt"
params [{x: 1}]
combine sum(result)
combine 1
timeout 5
`
	_, err := load(t, src, nil)
	var ds Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("got %v", err)
	}
	want := []string{
		`job.mf:1:13: unknown setting "worker" in env local`,
		`job.mf:2:19: setting "hosts" must be an integer, got string "3"`,
		`job.mf:3:11: duplicate parameter "x"`,
		`job.mf:3:20: unknown name z`,
		`job.mf:4:6: ship path "../up.txt" escapes`,
		`job.mf:6:13: unknown name result`,
		`job.mf:7:1: duplicate combine statement`,
		`job.mf:8:9: timeout needs a unit`,
	}
	if len(ds) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:\n%v", len(ds), len(want), ds)
	}
	for i, d := range ds {
		if !strings.Contains(d.Error(), want[i]) {
			t.Errorf("diagnostic %d\n  %s\nwant\n  %s", i, d.Error(), want[i])
		}
	}
}

func TestEmptyInput(t *testing.T) {
	for _, src := range []string{"", "\n\n", "# only a comment", "\r\n"} {
		f, err := Parse("e.mf", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		_, err = Check(f)
		want := "e.mf:1:1: missing func statement (add one, like: func add(x, y) = x + y)\n" +
			"e.mf:1:1: missing params statement (add one, like: params [{x: 1, y: 2}, {x: 3, y: 4}])"
		if err == nil || err.Error() != want {
			t.Errorf("%q: got\n%v\nwant\n%s", src, err, want)
		}
	}
}
