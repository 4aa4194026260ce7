package lang

import (
	"github.com/alecthomas/participle/v2"
)

// The grammar, as participle tagged structs. Every node records its Pos. Statements are
// recognised by their keyword (the lexer marks a line's first identifier as a Keyword when it
// is one), so a line starting with any other word parses as an unknownStmt that the checker
// reports with a suggestion, and checking goes on past it.
//
// An expression is a balanced run of tokens (the lexer guarantees the balance); its text is
// cut from the source afterwards, so expr-lang sees exactly what was written, comments
// included, and its positions map back onto the file.

type fileSyntax struct {
	Stmts []*stmt `parser:"( @@ | Newline )*"`
}

type stmt struct {
	Pos     Pos
	Job     *jobStmt     `parser:"  @@"`
	Env     *envStmt     `parser:"| @@"`
	Func    *funcStmt    `parser:"| @@"`
	Ship    *shipStmt    `parser:"| @@"`
	Params  *paramsStmt  `parser:"| @@"`
	Combine *combineStmt `parser:"| @@"`
	Retries *optionStmt  `parser:"| 'retries' @@"`
	Timeout *optionStmt  `parser:"| 'timeout' @@"`
	Recycle *optionStmt  `parser:"| 'recycle' @@"`
	Cache   *cacheStmt   `parser:"| @@"`
	Unknown *unknownStmt `parser:"| @@"`
}

type jobStmt struct {
	Pos     Pos
	Name    *ident     `parser:"'job' ( @@"`
	NameStr *stringLit `parser:"| @@ ) Newline"`
}

type envStmt struct {
	Pos   Pos
	Kind  *ident    `parser:"'env' @@"`
	Name  *ident    `parser:"@@?"`
	Items []envItem `parser:"'{' @@* '}' Newline"`
}

// envItem is a setting or a separator; separators are kept so the checker can ask for a comma
// between two settings written on one line.
type envItem struct {
	Setting *setting `parser:"  @@"`
	Comma   bool     `parser:"| @','"`
	Newline bool     `parser:"| @Newline"`
}

type setting struct {
	Pos   Pos
	Key   *ident `parser:"@@ '='"`
	Value *value `parser:"@@"`
}

// value is a literal: in env settings and after retries, timeout, recycle and cache.
type value struct {
	Pos      Pos
	Minus    bool       `parser:"@'-'?"`
	Int      *string    `parser:"( @Int"`
	Float    *string    `parser:"| @Float"`
	Duration *string    `parser:"| @Duration"`
	String   *string    `parser:"| @String"`
	Ident    *string    `parser:"| @Ident"`
	List     *listValue `parser:"| @@ )"`
}

type listValue struct {
	Pos   Pos
	Items []*value `parser:"'[' ( @@ ','? )* ']'"`
}

type optionStmt struct {
	Pos   Pos
	Value *value `parser:"@@ Newline"`
}

// cacheStmt is `cache`, or `cache true` / `cache false`.
type cacheStmt struct {
	Pos   Pos
	Value *value `parser:"'cache' @@? Newline"`
}

type funcStmt struct {
	Pos    Pos
	Name   *ident    `parser:"'func' @@"`
	Params []*ident  `parser:"'(' ( @@ ( ',' @@ )* )? ')'"`
	Body   *exprNode `parser:"'=' @@ Newline"`
}

type shipStmt struct {
	Pos   Pos
	Paths []*stringLit `parser:"'ship' @@ ( ',' @@ )* Newline"`
}

// paramsStmt's grid and file forms are parsed loosely (a bracketed group, an expression) and
// taken apart by the checker, which words their errors better than a parser can.
type paramsStmt struct {
	Pos  Pos
	Grid *exprGroup `parser:"'params' ( 'grid' @@"`
	File *exprNode  `parser:"| 'file' @@"`
	Expr *exprNode  `parser:"| @@ ) Newline"`
}

type combineStmt struct {
	Pos  Pos
	Expr *exprNode `parser:"'combine' @@ Newline"`
}

// unknownStmt is a line that starts with a word that is no statement keyword.
type unknownStmt struct {
	Pos   Pos
	Items []*exprItem `parser:"@@+ Newline"`
}

type ident struct {
	Pos  Pos
	Name string `parser:"@Ident"`
}

type stringLit struct {
	Pos   Pos
	Value string `parser:"@String"`
}

// exprNode is an expression: a balanced run of tokens. Text is filled in after parsing.
type exprNode struct {
	Pos   Pos
	Parts []*exprPart `parser:"@@+"`

	text string
}

type exprPart struct {
	Group *exprGroup `parser:"  @@"`
	Tok   *exprTok   `parser:"| @@"`
}

type exprTok struct {
	Pos   Pos
	Value string `parser:"@( Ident | Int | Float | Duration | String | Pointer | Punct | Other | ListLit )"`
}

// exprGroup is a bracketed part of an expression; inside it commas are ordinary tokens.
type exprGroup struct {
	Pos   Pos
	Open  string      `parser:"@( '(' | '[' | '{' )"`
	Inner []*exprItem `parser:"@@*"`
	Close *exprTok2   `parser:"@@"`
}

type exprItem struct {
	Group *exprGroup `parser:"  @@"`
	Tok   *exprTok   `parser:"| @@"`
	Comma *exprComma `parser:"| @@"`
}

type exprComma struct {
	Pos   Pos
	Value string `parser:"@','"`
}

type exprTok2 struct {
	Pos   Pos
	Value string `parser:"@( ')' | ']' | '}' )"`
}

var parser = participle.MustBuild[fileSyntax](
	participle.Lexer(lexDef{}),
	participle.UseLookahead(4),
)
