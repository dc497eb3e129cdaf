"""NDJSON traces: `record` writes them, `replay` and `api --replay` read them back.

`format` holds the wire lines and option grammars, `compression` the crash-safe
streams, `writer` the rotating segment writer, `recorder` the loops, `reader` and
`replay` the streaming reader and the pacing, `sse` and `source_sse` the
`record --from` client.
"""
