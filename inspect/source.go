package inspect

import (
	"errors"
	"strings"

	"github.com/orderengine/orderengine/actors"
	"github.com/orderengine/orderengine/persistence"
)

// Source is a journal read without writing; *persistence.Reader is one.
type Source interface {
	LoadSnapshot(id string) (seq uint64, state []byte, err error)
	Replay(id string, after uint64, fn func(seq uint64, event []byte) error) error
	Identities(fn func(persistence.IdentityInfo) error) error
	Identity(id string) (info persistence.IdentityInfo, found bool, err error)
}

// errReadOnly fails every write that recovery might attempt; it attempts
// none.
var errReadOnly = errors.New("inspect: the journal is opened read-only")

// readOnly adapts a Source to actors.Journal, so that the actors' own
// recovery functions rebuild states from it.
type readOnly struct{ Source }

var _ actors.Journal = readOnly{}

func (readOnly) AppendEventsMax() int { return 1 }

func (readOnly) Append(_ string, _ uint64, _ [][]byte, _ int64, done func(error)) { done(errReadOnly) }

func (readOnly) AppendWith(_ string, _ uint64, _ [][]byte, _ int64, _ []actors.NewIdentity, done func(error)) {
	done(errReadOnly)
}

func (readOnly) SaveSnapshot(_ string, _ uint64, _ []byte, done func(error)) { done(errReadOnly) }

func (readOnly) Due(int64, int, func(string, int64) bool) error { return errReadOnly }

func (readOnly) Delete(_ string, done func(error)) { done(errReadOnly) }

// The journal identities of the two actor kinds start with these.
var (
	skuPrefix   = actors.SKUJournalID("")
	orderPrefix = actors.OrderJournalID("")
)

// Kind names what a journal identity belongs to.
type Kind string

const (
	KindSKU     Kind = "sku"
	KindOrder   Kind = "order"
	KindUnknown Kind = "unknown"
)

// splitID returns the kind and the SKU or order ID of a journal identity.
func splitID(journalID string) (Kind, string) {
	if id, ok := strings.CutPrefix(journalID, skuPrefix); ok {
		return KindSKU, id
	}
	if id, ok := strings.CutPrefix(journalID, orderPrefix); ok {
		return KindOrder, id
	}
	return KindUnknown, journalID
}
