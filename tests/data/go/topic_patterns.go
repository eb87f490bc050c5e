// Command topic_patterns writes ../go-topic-patterns.json: which topic patterns Go's regexp
// (RE2 syntax, what pulse's WithSinkTopicPattern and WithReaderTopicPattern compile with
// regexp.Compile) accepts, and which topics each accepted one matches with MatchString
// (unanchored), for tests/core/test_go_vectors.py: streamsink must refuse what Go refuses and
// select the same topics.
//
// Run from this directory with the standard library alone: go run topic_patterns.go
package main

import (
	"encoding/json"
	"os"
	"regexp"
)

type result struct {
	Pattern string `json:"pattern"`
	// Go's error when it refuses the pattern, empty when it compiles.
	Error string `json:"go_error,omitempty"`
	// For each topic of the shared list, whether MatchString matches it.
	Matches []bool `json:"matches,omitempty"`
}

func main() {
	topics := []string{
		"", "ops", "devops", "ops.deploy", "OPS", "audit", "a\nb", "ops\n", "\nops",
		"x1", "x12", "a_b-c", "日本", "é", "İ", "ı", "K", "\u212a", "ab", "aab", "a.b",
		"tab\there", "{a}", "[x]", "a{,2}", "\x00", "ops/eu/1",
	}
	patterns := []string{
		"", "ops", "^ops$", "^ops", "ops$", "(?i)ops", "(?i:o)ps", "o.s", "(?s)a.b", "a.b",
		`\d`, `\w+`, `\s`, `\bops\b`, `\Bps`, `[[:alpha:]]+`, `[[:^digit:]]`, `\pL`, `\p{Han}`,
		`\PL`, `\z`, `ops\z`, `\Aops`, `\Z`, `(?m)^ops$`, `(?m)ops$`, `$`, `^$`, `^`, `a{,2}`,
		`a{2}`, `a{1001}`, `a{1000}`, `a*+`, `a++`, `a?+`, `(a)\1`, `(?P<n>a)(?P=n)`, `(?=a)`,
		`(?!a)`, `(?<=a)b`, `(?<!a)b`, `(?>a)`, `(?#c)a`, `(?<n>a)`, `(?P<n>a)`, `\Qa.b\E`,
		`\x41`, `\x{65e5}`, `\101`, `\12`, `\0`, `\8`, `\u0041`, `\N{DASH}`, `\G`, `(?x)a b`,
		`(?U)a+`, `(?a)a`, `(?u)a`, `(?L)a`, `(a`, `a)`, `[a`, `*a`, `a**`, `a{2,1}`,
		`(?i)K`, `(?i)k`, `(?i)i`, `(?i)I`, `(?i)ß`, `[^a]`, `[a-]`, `[]a]`, `[\d]`, `[\w-]`,
		`a|`, `|`, `()`, `(?:)`, `x(?i)ops`, `\.`, `\-`, `\/`, `\e`, `\a`, `\f`, `\v`, `\t`,
		`[[:word:]]`, `[[:foo:]]`, `\C`, `.`, `(?s).`, `\n`, `ops/.*/1`,
	}
	var out []result
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		r := result{Pattern: p}
		if err != nil {
			r.Error = err.Error()
		} else {
			for _, t := range topics {
				r.Matches = append(r.Matches, re.MatchString(t))
			}
		}
		out = append(out, r)
	}
	doc := map[string]any{
		"about": "Which topic patterns Go's regexp (go1.19) compiles and which topics each matches " +
			"(MatchString), by tests/data/go/topic_patterns.go. Regenerate with: cd tests/data/go " +
			"&& go run topic_patterns.go",
		"topics":  topics,
		"results": out,
	}
	f, err := os.Create("../go-topic-patterns.json")
	if err != nil {
		panic(err)
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		panic(err)
	}
	f.Close()
}
