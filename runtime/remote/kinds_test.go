package remote_test

// The conformance suite's job files run in env local, whose kind the local backend registers.
import _ "github.com/mapflow/mapflow/backends/local"
