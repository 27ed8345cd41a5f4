package directory_test

import (
	"fmt"
	"time"

	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
)

// An administrator signs the organisation's directory; a staff device
// accepts it on the anchor its enrolment gave it, and looks a name up in
// compose.
func Example() {
	admin, _ := identity.GenerateIdentity()
	alice, _ := identity.GenerateIdentity()
	org := directory.OrgID{1}
	pharmacy := directory.TeamID{2}
	d := &directory.Directory{
		Org: org, Version: 1, Issued: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC),
		Admins: []keys.Fingerprint{admin.Public().Fingerprint()},
		Teams:  []directory.Team{{ID: pharmacy, Name: "Pharmacy"}},
		Staff: []directory.Staff{{Identity: alice.Public().Fingerprint(), Name: "Alice Martin",
			Title: "Pharmacist", Teams: []directory.TeamID{pharmacy}}},
	}
	b, err := d.Sign(admin, nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	anchor := directory.Anchor{Org: org, Admins: []keys.Fingerprint{admin.Public().Fingerprint()}}
	held, err := directory.Accept(anchor, b)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range held.Lookup("pharm", 10) {
		switch m.Kind {
		case directory.MatchTeam:
			fmt.Println("team:", m.Team.Name)
		case directory.MatchStaff:
			fmt.Println("staff:", m.Staff.Name, "-", m.Staff.Title)
		}
	}
	// The same bytes again are not news; a replay of an older one would
	// be a rollback.
	_, err = directory.Accept(held.Anchor(), b)
	fmt.Println(err)
	// Output:
	// team: Pharmacy
	// staff: Alice Martin - Pharmacist
	// directory: the directory held, received again
}
