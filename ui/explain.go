package ui

import (
	"errors"
	"strings"

	"github.com/postern/postern/client"
)

// explainDefault words the library's errors when Options.Explain is not
// set, in the sentences the CLI uses for them (cmd/postern passes its own
// wording, so that the two never differ).
func explainDefault(home string) func(error) (string, string) {
	return func(err error) (string, string) {
		switch {
		case errors.Is(err, client.ErrWrongPassphrase):
			return "wrong passphrase for " + home, "try again"
		case errors.Is(err, client.ErrEmptyPassphrase):
			return "the passphrase must not be empty", ""
		case errors.Is(err, client.ErrNotInitialised):
			return "no Postern identity in " + home, "create one with: postern init --relay URL --name NAME"
		case errors.Is(err, client.ErrUnknownContact):
			return "unknown contact", ""
		case errors.Is(err, client.ErrNoMessage):
			return "no such message", ""
		}
		return strings.TrimPrefix(err.Error(), "client: "), ""
	}
}
