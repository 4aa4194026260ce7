// Package lang reads mapflow job files (.mf): it parses them, checks them against the
// language's rules and the env kinds' schemas, and compiles their expr-lang expressions once,
// so that runtime gets a *Job it can run without knowing how the file was written.
//
// # Stages
//
// Parse turns the text into a syntax tree (File). The lexer (lexer.go) is hand-written because
// what a character means depends on where it is: outside brackets a newline ends a statement
// and `#` starts a comment; inside an expression's brackets newlines are spaces, `#` is
// expr-lang's element pointer and comments are written `//` or `/* */`; inside an env block `#`
// is a comment again. A stack of open brackets answers both questions and proves the brackets
// balance. The grammar (grammar.go) is participle tagged structs; an expression is just a
// balanced run of tokens whose text is cut from the source afterwards, so expr-lang sees
// exactly what was written and its positions map 1:1 back onto the file. A line starting with a
// word that is no keyword parses as an unknown statement, so that checking can go on past it.
//
// Check walks the statements and reports every problem it finds as a Diagnostic (position,
// short summary, a detail saying how to fix it), not just the first: env settings against
// the schemas in schema.go, duplicates, ship paths that escape the file's directory, params
// sources. Expressions are compiled with expr-lang (eval.go) after one pass over their tree
// that patches `null` to nil and `/` to a division that fails on zero, and checks every name:
// a func body sees its parameters, the combiner sees results and tasks, params expressions see
// nothing. exec(...) is allowed only as a whole func body, and so are python(FILE [, FUNCTION])
// and serve(PROGRAM, ARGS...), whose string-literal arguments become a Warm spec (the Python
// file is shipped without a ship line); a combiner may be python(FILE, FUNCTION).
//
// # Running
//
// A Func is called through a Caller, one per goroutine, which reuses one expr-lang VM and
// passes the parameter set to it as is. Failures are EvalErrors classified like the catalog
// records them (TypeError, KeyError, ZeroDivisionError, ...), pointing at the .mf position with
// a three-line traceback. Params.Each streams the parameter sets in a fixed order (resume
// depends on it): a list expression evaluated once, a grid's cartesian product with the last
// axis varying fastest, or a .jsonl/.csv file read line by line.
package lang
