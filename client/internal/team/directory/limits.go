package directory

import (
	"time"

	"github.com/postern/postern/keys"
)

// Sizes of identifiers.
const (
	// OrgIDSize, TeamIDSize, RoleIDSize and GroupIDSize are the sizes of
	// the random identifiers of an organisation, a team, a role account
	// and a team's staff group.
	OrgIDSize   = 16
	TeamIDSize  = 16
	RoleIDSize  = 16
	GroupIDSize = 16
)

// Limits (SPEC.md section 15.7, "Limits").
const (
	// MaxAdmins is the most administrators a directory lists (at least 1).
	MaxAdmins = 16
	// MaxTeams is the most teams a directory lists.
	MaxTeams = 500
	// MaxStaff is the most staff entries a directory lists.
	MaxStaff = 5000
	// MaxRoles is the most role accounts a directory lists.
	MaxRoles = 500
	// MaxTeamsPerEntry is the most teams one staff entry names.
	MaxTeamsPerEntry = 16
	// MaxNameSize is the longest name (person, team, role account) and
	// role title, in bytes of UTF-8.
	MaxNameSize = 64

	// MaxForwardHops is the longest forwarding chain Route follows.
	MaxForwardHops = 3
	// MaxClockSkew is how far after the receiver's clock a status may be
	// dated.
	MaxClockSkew = 5 * time.Minute

	teamEntryMax  = TeamIDSize + 1 + MaxNameSize + GroupIDSize
	staffEntryMax = keys.FingerprintSize + 1 + MaxNameSize + 1 + MaxNameSize + 1 + MaxTeamsPerEntry*TeamIDSize
	roleEntryMax  = RoleIDSize + 1 + MaxNameSize + TeamIDSize + keys.FingerprintSize + 8
	headerSize    = 2 + OrgIDSize + 8 + 8
	trailerSize   = keys.SigningPublicKeySize + 2 + keys.SignatureSize

	// MinDirectorySize and MaxDirectorySize bound an encoded directory:
	// one administrator and nothing else, and every list full with every
	// name at its longest (2 217 912 bytes).
	MinDirectorySize = headerSize + 1 + keys.FingerprintSize + 3*2 + trailerSize
	MaxDirectorySize = headerSize + 1 + MaxAdmins*keys.FingerprintSize +
		2 + MaxTeams*teamEntryMax + 2 + MaxStaff*staffEntryMax + 2 + MaxRoles*roleEntryMax + trailerSize

	// RoleRecordSize and StatusSize are the exact sizes of a signed role
	// record and a signed status.
	RoleRecordSize = 2 + OrgIDSize + RoleIDSize + 8 + 8 + keys.FingerprintSize + trailerSize
	StatusSize     = 2 + OrgIDSize + keys.FingerprintSize + 8 + 1 + 8 + keys.FingerprintSize + trailerSize
)

// Type tags and the encoding version (SPEC.md section 8, "Type tags").
const (
	tagDirectory    = 0x5c
	tagRoleRecord   = 0x5d
	tagStatus       = 0x5e
	encodingVersion = 0x01
)

// maxUnixTime is 9999-12-31T23:59:59Z, the largest time of SPEC.md section 8.
const maxUnixTime = 253402300799
