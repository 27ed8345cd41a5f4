// Package directory owns an organisation's directory of staff, teams and
// role accounts, who holds each role, and each person's availability and
// forwarding (protocol/SPEC.md section 15.7). It is pure: no storage, no
// network, no logging, no private key (it signs through Signer, which
// *identity.Identity satisfies). The client fetches, stores and sends;
// this package encodes, verifies and decides.
//
// # Directory
//
// The organisation's administrators sign the directory with their
// identity keys. It lists the administrators themselves, the teams (name
// and staff group), the staff (identity fingerprint, name, role title,
// teams: nothing more) and the role accounts (name, team, holder). A
// device trusts a directory by an Anchor: the first from the
// organisation's enrolment (its ID and administrators), every later one
// the directory it holds:
//
//	d, err := directory.Accept(anchor, b) // ErrNotAdmin, ErrRollback, ErrFork, ...
//	anchor = d.Anchor()                   // keep d's bytes and its anchor
//
// Only an administrator of the held directory can sign the next one, so
// the set of administrators changes only by their own signature.
//
// Compose looks names up in the directory (Directory.Lookup: case-blind,
// word-prefix); an outsider sees only the teams that invited them
// (Directory.OutsiderView).
//
// # Role accounts
//
// Staff of a role's team take (opt in) and leave (opt out) a role with a
// signed RoleRecord; administrators may name any staff member of the team.
// A device keeps one RoleHolding per role, the greatest by (sequence,
// tiebreak), so every device reaches the same holder whatever order the
// records come in:
//
//	h, _ := d.Holding(role)             // or the holding kept
//	h, err = d.ApplyRoleRecord(h, rec)  // ErrNotEntitled, ErrRollback
//	moves := directory.Handover(role, oldHolder, d.Holder(h), conversations)
//
// # Availability
//
// Each person signs their own Status (available, busy, off duty;
// do-not-disturb until a time; a colleague to forward to). Directory.Route
// answers who receives a message for someone now, following forwarding
// for at most MaxForwardHops and refusing loops.
//
// # Security
//
//   - A directory, role record or status verifies only under the hybrid
//     signature (Ed25519 and ML-DSA-65) of the key it carries; whether that
//     key may sign is checked against the held directory, never against
//     the record itself (a directory naming its own signer an
//     administrator proves nothing).
//   - Rollback: a directory whose version is not above the held one is
//     refused; the same version with other bytes is a fork (ErrFork), the
//     evidence of an administrator or relay showing two directories. A
//     status not later than the held one is refused, and one dated more
//     than MaxClockSkew ahead.
//   - A role record's entitlement depends only on the directory, so that
//     holders converge; a staff member of the role's team can therefore
//     vacate or take the role from a colleague, and the record names who
//     did.
//   - The directory names staff and their teams, so it travels only
//     end-to-end encrypted, to staff devices; a relay's transparency log
//     records only its hash under LogKey (SPEC.md section 15.7), so the
//     relay and outsiders never read it, while every staff device can
//     check that it is shown the directory every other one is.
//   - An outsider is never given the directory: what they may see of it is
//     OutsiderView, the teams that invited them, with no staff and no role
//     accounts.
package directory
