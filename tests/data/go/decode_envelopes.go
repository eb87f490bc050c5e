// Command decode_envelopes writes ../go-decoded-envelopes.json: what loom-mcp's Go decoder makes
// of envelope bytes that are not all Go-produced (hand-written, other producers, hostile ones),
// decoded by Go's own encoding/json and time packages, for tests/core/test_go_decoded.py:
// streamsink must accept every envelope Go accepts, with the same fields.
//
// loom's default decoder unmarshals the envelope into a struct of its string fields, a
// time.Time timestamp and json.RawMessage payload and server_data (a RawMessage keeps the raw
// bytes of the value, and a JSON null as the bytes "null"); unknown keys are ignored and any
// error fails the decode. Go's json.Unmarshal of a string field replaces invalid UTF-8 and lone
// surrogate escapes with U+FFFD; a JSON null leaves a string or time.Time at its zero value.
//
// Run from this directory with the standard library alone: go run decode_envelopes.go
package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

type envelope struct {
	Type       string          `json:"type"`
	EventKey   string          `json:"event_key"`
	RunID      string          `json:"run_id"`
	SessionID  string          `json:"session_id"`
	Timestamp  time.Time       `json:"timestamp"`
	Payload    json.RawMessage `json:"payload"`
	ServerData json.RawMessage `json:"server_data"`
}

type result struct {
	Name  string `json:"name"`
	Input string `json:"input_base64"`
	Text  string `json:"input_text,omitempty"`
	// Go's verdict: the error text when it refuses, empty when it decodes.
	Error string `json:"go_error,omitempty"`
	// The decoded fields, when it decodes. Strings are base64 of Go's bytes (always UTF-8 here).
	Type      string `json:"type,omitempty"`
	EventKey  string `json:"event_key,omitempty"`
	RunID     string `json:"run_id,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	// Timestamp: set false when the key is missing or null (Go's zero time).
	HasTime     bool   `json:"has_timestamp"`
	UnixSeconds int64  `json:"unix_seconds,omitempty"`
	Nanosecond  int    `json:"nanosecond,omitempty"`
	Offset      int    `json:"utc_offset_seconds,omitempty"`
	Payload     string `json:"payload_base64,omitempty"`
	HasPayload  bool   `json:"has_payload"`
	ServerData  string `json:"server_data_base64,omitempty"`
	HasServer   bool   `json:"has_server_data"`
}

func main() {
	head := `{"type":"t","run_id":"r","timestamp":`
	inputs := []struct{ name, input string }{
		{"plain", `{"type":"tool_end","run_id":"r","session_id":"s","timestamp":"2026-11-26T17:19:26.123456789Z","payload":{"a":1}}`},
		{"offset +01:00", head + `"2026-11-26T18:19:26.5+01:00"}`},
		{"offset -00:00", head + `"2026-11-26T17:19:26-00:00"}`},
		{"lower-case t and z", head + `"2026-11-26t17:19:26z"}`},
		{"comma before the fraction", head + `"2026-11-26T17:19:26,5Z"}`},
		{"ten fractional digits", head + `"2026-11-26T17:19:26.1234567891Z"}`},
		{"fraction without digits", head + `"2026-11-26T17:19:26.Z"}`},
		{"hour 24", head + `"2026-11-26T24:00:00Z"}`},
		{"second 60", head + `"2026-11-26T23:59:60Z"}`},
		{"February 30", head + `"2026-02-30T10:00:00Z"}`},
		{"space instead of T", head + `"2026-11-26 17:19:26Z"}`},
		{"no zone", head + `"2026-11-26T17:19:26"}`},
		{"offset without colon", head + `"2026-11-26T17:19:26+0100"}`},
		{"offset +24:00", head + `"2026-11-26T17:19:26+24:00"}`},
		{"year 0000", head + `"0000-01-01T00:00:00Z"}`},
		{"year 9999 behind UTC", head + `"9999-12-31T23:59:59-01:00"}`},
		{"year 0001 ahead of UTC", head + `"0001-01-01T00:00:00+01:00"}`},
		{"timestamp null", head + `null}`},
		{"timestamp missing", `{"type":"t","run_id":"r"}`},
		{"timestamp a number", head + `1700000000}`},
		{"timestamp with escapes", head + `"2026-11-26T17:19:26\u005a"}`},
		{"empty object", `{}`},
		{"type null", `{"type":null,"run_id":"r"}`},
		{"type a number", `{"type":5}`},
		{"run_id null", `{"type":"t","run_id":null}`},
		{"session_id an object", `{"type":"t","session_id":{}}`},
		{"payload null", `{"type":"t","payload":null}`},
		{"server_data null", `{"type":"t","server_data":null}`},
		{"big numbers", `{"type":"t","payload":{"a":1e400,"b":123456789012345678901234567890,"c":-1e-400},"server_data":1e999}`},
		{"lone surrogates in strings", `{"type":"t\ud800","run_id":"\udc00x","payload":"\ud800","server_data":["\udfff"]}`},
		{"surrogate pair", `{"type":"\ud83d\ude00"}`},
		{"invalid UTF-8 in strings", "{\"type\":\"t\xff\",\"run_id\":\"a\xc3(\",\"payload\":\"\xfe\"}"},
		{"invalid UTF-8 outside strings", "{\"type\":\"t\"}\xff"},
		{"escaped key", `{"\u0074ype":"t","run_\u0069d":"r"}`},
		{"key case folded", `{"TYPE":"t","Run_ID":"r"}`},
		{"exact and folded key", `{"type":"a","TYPE":"b","Type":"c"}`},
		{"Kelvin sign and long s fold", `{"type":"t","event_\u212aey":"k","\u017fession_id":"s"}`},
		{"duplicate keys", `{"type":"a","type":"b","payload":1,"payload":2}`},
		{"unknown keys", `{"type":"t","v":2,"seq":[1],"traceparent":"00-x"}`},
		{"whitespace everywhere", " \t\n{ \"type\" : \"t\" ,\r\n \"payload\" : [ 1 , 2 ] } \n"},
		{"deep payload", `{"type":"t","payload":` + strings.Repeat("[", 9990) + strings.Repeat("]", 9990) + `}`},
		{"too deep payload", `{"type":"t","payload":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`},
		{"trailing comma", `{"type":"t",}`},
		{"single quotes", `{'type':'t'}`},
		{"NaN", `{"type":"t","payload":NaN}`},
		{"leading zero", `{"type":"t","payload":01}`},
		{"raw control character in a string", "{\"type\":\"t\x01\"}"},
		{"DEL in a string", "{\"type\":\"t\x7f\"}"},
		{"top-level array", `[{"type":"t"}]`},
		{"two objects", `{"type":"a"}{"type":"b"}`},
		{"BOM", "\xef\xbb\xbf{\"type\":\"t\"}"},
		{"empty input", ``},
		{"NUL escape in type", `{"type":"t\u0000"}`},
	}
	var out []result
	for _, c := range inputs {
		r := result{Name: c.name, Input: base64.StdEncoding.EncodeToString([]byte(c.input))}
		if utf8.ValidString(c.input) && len(c.input) < 300 {
			r.Text = c.input
		}
		var env envelope
		if err := json.Unmarshal([]byte(c.input), &env); err != nil {
			r.Error = err.Error()
		} else {
			b := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
			r.Type, r.EventKey, r.RunID, r.SessionID = b(env.Type), b(env.EventKey), b(env.RunID), b(env.SessionID)
			if !env.Timestamp.IsZero() {
				r.HasTime = true
				r.UnixSeconds = env.Timestamp.Unix()
				r.Nanosecond = env.Timestamp.Nanosecond()
				_, r.Offset = env.Timestamp.Zone()
			}
			if env.Payload != nil {
				r.HasPayload, r.Payload = true, base64.StdEncoding.EncodeToString(env.Payload)
			}
			if env.ServerData != nil {
				r.HasServer, r.ServerData = true, base64.StdEncoding.EncodeToString(env.ServerData)
			}
		}
		out = append(out, r)
	}
	doc := map[string]any{
		"about": "What Go's encoding/json and time (go1.19) make of envelope bytes, decoded into " +
			"loom-mcp's envelope fields by tests/data/go/decode_envelopes.go. streamsink accepts " +
			"every envelope Go accepts. Later Go versions tightened time.Time's RFC 3339 parsing " +
			"(golang/go#54580, #57912), so a newer Go may refuse forms go1.19 accepts here (a ',' " +
			"before the fraction, zone offsets of 24 hours or more); accepting them is never a " +
			"loss. Regenerate with: cd tests/data/go && go run decode_envelopes.go",
		"results": out,
	}
	f, err := os.Create("../go-decoded-envelopes.json")
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
