// Command search measures the candidate full-text search engines for the
// client's local search on one generated corpus: indexing rate, index
// size on disk, time to open, heap in use, and p50/p99 query times for
// each shape of query; and checks that the canary word appears in no
// byte that the engine wrote. See README.md for the figures.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

var kinds = []Kind{clientKind, fts5Kind, bleveSealedKind, bleveScorchKind}

func kindByName(name string) (Kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

func main() {
	var (
		engine  = flag.String("engine", "all", "engine to measure: all, or one of "+names())
		n       = flag.Int("n", 100000, "messages in the corpus")
		queries = flag.Int("queries", 200, "queries of each shape")
		batch   = flag.Int("batch", 1000, "messages per indexing batch (transaction)")
		dir     = flag.String("dir", "", "directory for the indexes (default: a temporary one, removed after)")
		seed    = flag.Uint64("seed", 13, "corpus seed")
	)
	flag.IntVar(&ftsCacheMiB, "fts-cache", ftsCacheMiB, "SQLite page cache of the fts5 engine, MiB")
	flag.StringVar(&ftsOrder, "fts-order", ftsOrder, "fts5 result order: rank (bm25 over all matches), newest (no ranking), recent-rank (bm25 over the -fts-recent newest matches), wordrank (BM25 with each phrase's frequency from its rarest word)")
	flag.IntVar(&ftsRecent, "fts-recent", ftsRecent, "matches ranked by -fts-order recent-rank")
	flag.Parse()
	if *engine == "all" {
		// One process per engine, so that one's heap does not weigh on
		// the next one's figures.
		self, err := os.Executable()
		if err != nil {
			fatal(err)
		}
		for _, k := range kinds {
			cmd := exec.Command(self, append(flagsExcept("engine"), "-engine", k.Name)...)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				fatal(fmt.Errorf("%s: %w", k.Name, err))
			}
		}
		return
	}
	k, ok := kindByName(*engine)
	if !ok {
		fatal(fmt.Errorf("unknown engine %q (want all, %s)", *engine, names()))
	}
	base := *dir
	if base == "" {
		d, err := os.MkdirTemp("", "search-bench-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		base = d
	}
	load0 := loadavg()
	res, err := measure(context.Background(), k, base, *n, *queries, *batch, *seed)
	if err != nil {
		fatal(err)
	}
	res.print(os.Stdout)
	// Other work on the machine inflates every figure: say how busy it was.
	fmt.Printf("  load average before: %s; after: %s; fts5 page cache %d MiB, order %s (recent %d); GOMAXPROCS %d\n",
		load0, loadavg(), ftsCacheMiB, ftsOrder, ftsRecent, runtime.GOMAXPROCS(0))
}

func names() string {
	var s []string
	for _, k := range kinds {
		s = append(s, k.Name)
	}
	return strings.Join(s, ", ")
}

func flagsExcept(name string) []string {
	var out []string
	flag.Visit(func(f *flag.Flag) {
		if f.Name != name {
			out = append(out, "-"+f.Name+"="+f.Value.String())
		}
	})
	return out
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "search bench:", err)
	os.Exit(1)
}

type latency struct {
	name     string
	p50, p99 time.Duration
	max      time.Duration
	hits     float64 // mean results per query (at most the limit)
	empty    int     // queries with no result
	count    int
}

type result struct {
	engine      string
	n           int
	corpusBytes int64
	index       time.Duration // Add of every batch, and Prepare
	prepare     time.Duration // Prepare alone (FTS5's optimize)
	add         latency       // adding one new message to the open index
	persist     time.Duration // Close after indexing (sealing for bleve-sealed)
	open        time.Duration // Open and the first query
	size        int64
	files       int
	heap        uint64 // Go heap in use by the open index
	rss         int64  // resident memory of the open index (SQLite's memory is mapped outside the Go heap)
	rssQueries  int64  // the same after all the queries
	peakRSS     string
	lat         []latency
	canary      string
}

func (r result) rate() float64 { return float64(r.n) / (r.index + r.persist).Seconds() }

func (r result) print(w *os.File) {
	fmt.Fprintf(w, "engine=%s messages=%d corpus_text=%.1fMiB\n", r.engine, r.n, float64(r.corpusBytes)/(1<<20))
	fmt.Fprintf(w, "  index %.1fs + persist %.1fs = %.0f msgs/s; on disk %.1f MiB in %d files; open to first result %s; heap in use after open %.0f MiB, resident %.0f MiB (%.0f MiB after the queries); peak RSS %s; canary %s\n",
		r.index.Seconds(), r.persist.Seconds(), r.rate(), float64(r.size)/(1<<20), r.files, r.open.Round(time.Millisecond),
		float64(r.heap)/(1<<20), float64(r.rss)/(1<<20), float64(r.rssQueries)/(1<<20), r.peakRSS, r.canary)
	if r.prepare > 0 {
		fmt.Fprintf(w, "  of the indexing, the final merge (optimize) took %.1fs\n", r.prepare.Seconds())
	}
	for _, l := range r.lat {
		fmt.Fprintf(w, "  %-10s n=%d p50=%s p99=%s max=%s mean_hits=%.1f empty=%d\n", l.name, l.count,
			ms(l.p50), ms(l.p99), ms(l.max), l.hits, l.empty)
	}
	fmt.Fprintf(w, "  add one new message (own batch) n=%d p50=%s p99=%s max=%s\n", r.add.count, ms(r.add.p50), ms(r.add.p99), ms(r.add.max))
	fmt.Fprintf(w, "RESULT %s rate=%.0f size_mib=%.1f open_ms=%d heap_mib=%.0f rss_mib=%.0f rss_after_queries_mib=%.0f", r.engine, r.rate(),
		float64(r.size)/(1<<20), r.open.Milliseconds(), float64(r.heap)/(1<<20), float64(r.rss)/(1<<20), float64(r.rssQueries)/(1<<20))
	for _, l := range r.lat {
		fmt.Fprintf(w, " %s=%s/%s", l.name, ms(l.p50), ms(l.p99))
	}
	fmt.Fprintln(w)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func heapInUse() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// rss is the resident memory of the process in bytes (0 where
// /proc/self/status is not there).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			var kb int64
			fmt.Sscan(f[1], &kb)
			return kb << 10
		}
	}
	return 0
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	return "?"
}

func newKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		fatal(err)
	}
	return k
}

// indexAll adds the corpus in batches and runs the kind's Prepare,
// returning how long Prepare took.
func indexAll(ctx context.Context, k Kind, e Engine, msgs []Message, batch int) (time.Duration, error) {
	for i := 0; i < len(msgs); i += batch {
		if err := e.Add(ctx, msgs[i:min(i+batch, len(msgs))]); err != nil {
			return 0, err
		}
	}
	if k.Prepare != nil {
		t := time.Now()
		err := k.Prepare(e)
		return time.Since(t), err
	}
	return 0, nil
}

func summarize(name string, ds []time.Duration) latency {
	slices.Sort(ds)
	return latency{name: name, count: len(ds), p50: ds[len(ds)/2], p99: ds[(len(ds)*99+99)/100-1], max: ds[len(ds)-1]}
}

func measure(ctx context.Context, k Kind, base string, n, count, batch int, seed uint64) (res result, err error) {
	res = result{engine: k.Name, n: n}
	c := Generate(n, seed)
	sets := c.Queries(count, seed+1)
	for _, m := range c.Msgs {
		res.corpusBytes += int64(len(m.Subject) + len(m.Body) + len(m.AttachmentWords()) + len(m.People()))
	}
	dir := filepath.Join(base, k.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	key := newKey()
	heap0 := heapInUse()
	rss0 := rss()

	t := time.Now()
	e, err := k.Create(dir, key)
	if err != nil {
		return res, err
	}
	if res.prepare, err = indexAll(ctx, k, e, c.Msgs, batch); err != nil {
		e.Close()
		return res, err
	}
	res.index = time.Since(t)
	if k.Open != nil {
		t = time.Now()
		if err := e.Close(); err != nil {
			return res, err
		}
		res.persist = time.Since(t)
		c = nil // the corpus is not needed to open a persisted index
		heap0 = heapInUse()
		rss0 = rss()
		t = time.Now()
		if e, err = k.Open(dir, key); err != nil {
			return res, err
		}
	} else {
		// Nothing persists: opening is indexing everything again.
		t = time.Now()
	}
	if _, err := e.Search(ctx, sets[0].Queries[0]); err != nil {
		e.Close()
		return res, err
	}
	if k.Open != nil {
		res.open = time.Since(t)
	} else {
		res.open = res.index
	}
	c = nil
	if h := heapInUse(); h > heap0 {
		res.heap = h - heap0
	}
	if r := rss(); r > rss0 {
		res.rss = r - rss0
	}
	for _, s := range sets {
		ds := make([]time.Duration, 0, len(s.Queries))
		total, empty := 0, 0
		for _, q := range s.Queries {
			t := time.Now()
			ids, err := e.Search(ctx, q)
			d := time.Since(t)
			if err != nil {
				e.Close()
				return res, fmt.Errorf("%s query %+v: %w", s.Name, q, err)
			}
			ds = append(ds, d)
			total += len(ids)
			if len(ids) == 0 {
				empty++
			}
		}
		l := summarize(s.Name, ds)
		l.hits = float64(total) / float64(len(ds))
		l.empty = empty
		res.lat = append(res.lat, l)
	}
	// New messages arriving one by one at the open index.
	more := Generate(100, seed+2).Msgs
	ds := make([]time.Duration, 0, len(more))
	for _, m := range more {
		m.ID += int64(n)
		t := time.Now()
		if err := e.Add(ctx, []Message{m}); err != nil {
			e.Close()
			return res, err
		}
		ds = append(ds, time.Since(t))
	}
	res.add = summarize("add", ds)
	if r := rss(); r > rss0 {
		res.rssQueries = r - rss0
	}
	if err := e.Close(); err != nil {
		return res, err
	}
	res.peakRSS = peakRSS()
	res.size, res.files, err = dirSize(dir)
	if err != nil {
		return res, err
	}
	found, err := scanFor(dir, Canary)
	switch {
	case err != nil:
		return res, err
	case len(found) > 0:
		return res, fmt.Errorf("%w: %s", errCanary, strings.Join(found, ", "))
	case res.files == 0:
		res.canary = "absent (nothing written)"
	default:
		res.canary = "absent"
	}
	return res, nil
}

func dirSize(dir string) (size int64, files int, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		size += info.Size()
		files++
		return nil
	})
	return size, files, err
}

var errCanary = errors.New("canary found in index files")

// scanFor returns the files under dir that contain word, in any case, as
// UTF-8 or as UTF-16 (either byte order).
func scanFor(dir, word string) ([]string, error) {
	var needles [][]byte
	for _, w := range []string{strings.ToLower(word), strings.ToUpper(word), strings.ToUpper(word[:1]) + word[1:]} {
		needles = append(needles, []byte(w))
		le, be := make([]byte, 0, 2*len(w)), make([]byte, 0, 2*len(w))
		for i := 0; i < len(w); i++ {
			le = append(le, w[i], 0)
			be = append(be, 0, w[i])
		}
		needles = append(needles, le, be)
	}
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, nd := range needles {
			if bytes.Contains(b, nd) {
				found = append(found, p)
				break
			}
		}
		return nil
	})
	return found, err
}
