package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Message is what the search index is given of one stored message: the
// words of its subject, text, attachment file names and people, and the
// two filters (folder, date). The index never needs more, so neither
// engine is asked to keep the texts themselves (the store has them).
type Message struct {
	ID          int64
	Subject     string
	Body        string
	Attachments []string // file names as sent
	Sender      string   // display name
	Recipients  []string // display names
	Folder      string
	Date        int64 // Unix seconds
}

// People is the text of the people field: sender and recipients.
func (m Message) People() string {
	return m.Sender + " " + strings.Join(m.Recipients, " ")
}

// AttachmentWords is the text of the attachments field. File names are
// split on '_', '.', '-' before either engine sees them: bleve's Unicode
// word segmentation keeps "echo_report.pdf" as one token (UAX #29 joins
// across '_' and '.'), FTS5's unicode61 splits it, and a person searching
// for "echo" must find the file on both.
func (m Message) AttachmentWords() string {
	var b strings.Builder
	for _, a := range m.Attachments {
		b.WriteString(strings.Map(func(r rune) rune {
			switch r {
			case '_', '.', '-':
				return ' '
			}
			return r
		}, a))
		b.WriteByte(' ')
	}
	return b.String()
}

// Canary is planted in texts, subjects and file names of the corpus; it
// must be found by search and must not appear in any byte an engine wrote.
const Canary = "xylocanarium"

// Words planted in chosen messages; none occurs in the generated
// vocabulary (vocabulary() skips them), so each query has a known answer.
const (
	wordUnique    = "quillonectomy"
	phraseA       = "marrowquist"
	phraseB       = "feldspane"
	phraseC       = "ostrinoid"
	attachWord    = "kestrelwood"
	folderWord    = "groundselia"
	dateWord      = "tamariskine"
	subjectWord   = "wolframicosis"
	combinedA     = "velvetleaf"
	combinedB     = "nocturnia"
	plantedFirst  = "Ottoline"
	plantedLast   = "Vargheseworth"
	plantedSender = plantedFirst + " " + plantedLast
)

var reserved = []string{Canary, wordUnique, phraseA, phraseB, phraseC, attachWord, folderWord,
	dateWord, subjectWord, combinedA, combinedB, strings.ToLower(plantedFirst), strings.ToLower(plantedLast)}

// Folders and the share of messages in each.
var folders = []struct {
	name  string
	share int // per thousand
}{{"inbox", 550}, {"sent", 250}, {"archive", 120}, {"referrals", 40}, {"lab-results", 30}, {"drafts", 10}}

var (
	corpusStart = time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	corpusSpan  = int64(3 * 365 * 24 * 3600)
)

func day(y int, m time.Month, d int) int64 { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Unix() }

// Planted is one message's planted content and its index in the corpus.
type Planted struct {
	Name string
	Pos  int
}

// plantedPositions spreads the planted messages over the corpus (not all
// at its start, where an engine's first segment would hold them all).
func plantedPositions(n int) map[string]int {
	names := []string{"word", "phrase", "phraseReversed", "sender", "attachment", "folderIn", "folderOut",
		"dateIn", "dateOut", "subject", "combined", "combinedWrongFolder", "combinedWrongDate"}
	pos := make(map[string]int, len(names))
	for i, nm := range names {
		pos[nm] = (i + 1) * n / (len(names) + 2)
	}
	return pos
}

// canaryPositions are the messages that carry the canary.
func canaryPositions(n int) []int {
	return []int{n / 17, n/3 + 7, n/2 + 3, n - 2}
}

// Corpus is a generated set of messages with its planted answers.
type Corpus struct {
	Msgs    []Message
	Planted map[string]int64 // planted name -> message ID
	Canary  []int64          // IDs of messages with the canary
	vocab   []string
	people  []string
}

func vocabulary(r *rand.Rand) []string {
	common := strings.Fields(`the and of to a in patient is for with on was at by as be this that are from
	no not or has have had per we it an will his her she he they please review result results follow up
	today yesterday week day daily dose mg ml blood pressure heart rate pain left right chest abdomen
	history plan assessment noted normal abnormal clinic ward discharge admitted referral referred
	medication medications tablet tablets twice once morning evening night fever cough breath
	shortness nausea vomiting diarrhoea headache fatigue swelling rash wound dressing infection
	antibiotic antibiotics amoxicillin metformin insulin glucose hba1c creatinine potassium sodium
	haemoglobin platelets white cell count crp esr ecg echo xray ct mri ultrasound scan report
	reviewed stable improving worse worsening unchanged family gp nurse consultant registrar team
	appointment booked cancelled rescheduled call phone contact thanks regards kind dear hi hello
	question concern concerns advice recommend recommended start stop continue increase reduce
	weight height bmi diet exercise smoking alcohol allergy allergies penicillin known none
	diabetes hypertension asthma copd anaemia arthritis depression anxiety dementia stroke
	fracture surgery post operative pre mobility physiotherapy occupational therapy social care
	home visit district bloods urine sample culture sensitive resistant negative positive level
	levels range target repeat monitor monitoring months weeks hours minutes symptoms signs exam
	examination chest clear bilateral oedema murmur sinus rhythm atrial fibrillation warfarin
	apixaban inr bleeding bruising fall falls dizziness syncope confusion delirium capacity consent`)
	syll := strings.Fields(`ab ac ad al am an ar as at ba be bi bo bra ca ce ci co cu da de di do du
	el em en er es fa fe fi fo ga ge gi go ha he hi ho il im in ir is la le li lo lu ma me mi mo mu na
	ne ni no nu ob oc ol om on op or os pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to tu
	ul um un ur va ve vi vo`)
	suffix := strings.Fields(`itis oma osis emia algia ectomy otomy ology ic al ine ate ase ide ism ia`)
	skip := make(map[string]bool, len(reserved))
	for _, w := range reserved {
		skip[w] = true
	}
	seen := make(map[string]bool)
	var out []string
	for _, w := range common {
		if !seen[w] && !skip[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	const size = 30000
	for len(out) < size {
		var b strings.Builder
		for k := 1 + r.IntN(3); k > 0; k-- {
			b.WriteString(syll[r.IntN(len(syll))])
		}
		if r.IntN(3) == 0 {
			b.WriteString(suffix[r.IntN(len(suffix))])
		}
		w := b.String()
		if len(w) < 3 || seen[w] || skip[w] || strings.Contains(w, Canary) {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

func peopleNames() []string {
	first := strings.Fields(`Amara Ben Chloe Dev Elena Farid Grace Hamza Isla Jonas Kiran Lena Marco Nadia
	Oscar Priya Quentin Rosa Samir Tess Umar Vera Wen Xavier Yara Zoltan Aisha Bruno Carmen Dmitri
	Esther Felix Gita Hugo Ines Jakob Keiko Liam Maya Noor`)
	last := strings.Fields(`Abbott Bakker Chen Dubois Evans Fischer Garcia Haddad Ito Jensen Kowalski
	Lindqvist Moreau Nakamura Okafor Patel Quinn Rossi Schmidt Tanaka Usman Varga Weber Xu Yilmaz
	Zhang Adeyemi Brennan Costa Novak Murphy Silva Ahmed Berg Ivanova Kaur Larsen Mensah Osei Park`)
	var out []string
	for i, f := range first {
		for j := range 10 {
			out = append(out, f+" "+last[(i*7+j*3)%len(last)])
		}
	}
	return out
}

var attachKinds = strings.Fields(`lab_results discharge_summary referral_letter ecg xray mri_report
	prescription consent_form wound_photo care_plan blood_panel echo_report`)
var attachExts = strings.Fields(`pdf pdf pdf docx png jpg`)

// Generate makes n messages deterministically from seed. Texts are 20 to
// 200 words drawn from a 30,000-word vocabulary under a Zipf law (a few
// hundred clinical and common words at the head, made-up terms in the
// tail), subjects of 3 to 8 words, senders and recipients from 400
// people (also Zipf: a few frequent correspondents), folders by the
// shares above, dates over three years, attachments on one message in
// six. Planted messages and the canary are then written over chosen ones.
func Generate(n int, seed uint64) *Corpus {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	c := &Corpus{vocab: vocabulary(r), people: peopleNames(), Planted: map[string]int64{}}
	zw := rand.NewZipf(r, 1.07, 2, uint64(len(c.vocab)-1))
	zp := rand.NewZipf(r, 1.2, 4, uint64(len(c.people)-1))
	words := func(k int) string {
		var b strings.Builder
		for i := range k {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(c.vocab[zw.Uint64()])
		}
		return b.String()
	}
	c.Msgs = make([]Message, n)
	for i := range c.Msgs {
		m := &c.Msgs[i]
		m.ID = int64(i + 1)
		m.Subject = words(3 + r.IntN(6))
		if r.IntN(10) < 3 {
			m.Subject = "Re " + m.Subject
		}
		m.Body = words(20 + r.IntN(181))
		m.Sender = c.people[zp.Uint64()]
		for k := 1 + r.IntN(2); k > 0; k-- {
			m.Recipients = append(m.Recipients, c.people[zp.Uint64()])
		}
		f, x := "", r.IntN(1000)
		for _, fo := range folders {
			if x < fo.share {
				f = fo.name
				break
			}
			x -= fo.share
		}
		m.Folder = f
		m.Date = corpusStart + int64(i)*corpusSpan/int64(n) + r.Int64N(24*3600)
		if r.IntN(6) == 0 {
			for k := 1 + r.IntN(3); k > 0; k-- {
				d := time.Unix(m.Date, 0).UTC().Format("2006-01-02")
				last := strings.Fields(m.Sender)[1]
				m.Attachments = append(m.Attachments, fmt.Sprintf("%s_%s_%s.%s",
					attachKinds[r.IntN(len(attachKinds))], strings.ToLower(last), d, attachExts[r.IntN(len(attachExts))]))
			}
		}
	}
	c.plant(r)
	return c
}

// insert puts text at a random word boundary of s.
func insert(r *rand.Rand, s, text string) string {
	f := strings.Fields(s)
	i := r.IntN(len(f) + 1)
	return strings.Join(append(f[:i:i], append([]string{text}, f[i:]...)...), " ")
}

func (c *Corpus) plant(r *rand.Rand) {
	n := len(c.Msgs)
	pos := plantedPositions(n)
	at := func(name string) *Message {
		m := &c.Msgs[pos[name]]
		c.Planted[name] = m.ID
		return m
	}
	at("word").Body = insert(r, at("word").Body, wordUnique)
	at("phrase").Body = insert(r, at("phrase").Body, phraseA+" "+phraseB+" "+phraseC)
	at("phraseReversed").Body = insert(r, at("phraseReversed").Body, phraseC+" "+phraseB+" "+phraseA)
	at("sender").Sender = plantedSender
	at("attachment").Attachments = append(at("attachment").Attachments, "echo_report_"+attachWord+".pdf")
	for _, p := range []struct {
		name, folder string
	}{{"folderIn", "referrals"}, {"folderOut", "inbox"}} {
		m := at(p.name)
		m.Body = insert(r, m.Body, folderWord)
		m.Folder = p.folder
	}
	for _, p := range []struct {
		name string
		date int64
	}{{"dateIn", day(2024, 2, 10)}, {"dateOut", day(2025, 6, 1)}} {
		m := at(p.name)
		m.Body = insert(r, m.Body, dateWord)
		m.Date = p.date
	}
	at("subject").Subject = "Query about " + subjectWord + " follow up"
	for _, p := range []struct {
		name, folder string
		date         int64
	}{{"combined", "archive", day(2024, 11, 5)}, {"combinedWrongFolder", "inbox", day(2024, 11, 6)},
		{"combinedWrongDate", "archive", day(2023, 11, 5)}} {
		m := at(p.name)
		m.Body = insert(r, m.Body, combinedA+" "+combinedB)
		m.Sender = plantedSender
		m.Folder = p.folder
		m.Date = p.date
	}
	for k, i := range canaryPositions(n) {
		m := &c.Msgs[i]
		switch k % 3 {
		case 0:
			m.Body = insert(r, m.Body, Canary)
		case 1:
			m.Subject = m.Subject + " " + Canary
		case 2:
			m.Attachments = append(m.Attachments, Canary+"_notes.pdf")
		}
		c.Canary = append(c.Canary, m.ID)
	}
}
