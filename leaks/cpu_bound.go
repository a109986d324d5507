package leaks

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

func init() {
	register(&Service{
		Name:    "cpu-bound",
		Kind:    KindCPU,
		Summary: "Each tag-cloud request burns several milliseconds of CPU, so a core serves only a couple of hundred a second; more processes or more cores raise the ceiling only in step with the cores.",
		Hints: []string{
			"Nothing waits here: the CPU is saturated. A CPU profile under load shows one function of the service, not the runtime or net/http, taking most of it.",
			"That function finds the distinct tags by scanning the list of tags seen so far for every tag of the document: quadratic in the number of distinct tags.",
			"Count with a map (map[string]int) and sort the distinct tags once: linear work instead of quadratic. Clustering cannot fix this; it only spreads the waste over more cores.",
		},
		Culprit:   pkgPath + ".(*tagCloudService).countTags",
		Profile:   "cpu",
		Endpoints: []Endpoint{{Method: "GET", Path: "/tags?doc={i}", Doc: "builds the tag cloud (top tags and their counts) of a document's 3,000 tags"}},
		Symptom:   Symptom{Metric: "process_cpu_seconds_total", PerRequest: true, Leaky: 0.002, Fixed: 0.001},
		Drive:     Drive{Warmup: 50, Requests: 250, Concurrency: 4},
		Explanation: "The leaky variant keeps the distinct tags in a slice and looks every tag up with a linear scan, so a " +
			"document with d distinct tags out of n costs n·d string comparisons, all CPU. The fixed variant counts " +
			"with a map, which is linear. Both variants never wait for anything, which makes the service the " +
			"CPU-bound case for 'leaklab scale': one process with GOMAXPROCS=N already uses every core, so N " +
			"processes cannot serve more.",
		build: func(env *Env) (http.Handler, error) {
			s := &tagCloudService{env: env, vocabulary: tagVocabulary(tagVocabularySize)}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /tags", s.serve)
			return mux, nil
		},
	})
}

const (
	tagsPerDocument   = 3000
	tagVocabularySize = 1500
	tagCloudTop       = 10
)

func tagVocabulary(n int) []string {
	words := make([]string, n)
	for i := range words {
		words[i] = fmt.Sprintf("topic-%04d", i)
	}
	return words
}

type tagCloudService struct {
	env        *Env
	vocabulary []string
}

type tagCount struct {
	tag   string
	count int
}

func (s *tagCloudService) serve(w http.ResponseWriter, r *http.Request) {
	tags := s.documentTags(r.URL.Query().Get("doc"))
	counts := s.countTags(tags)
	slices.SortFunc(counts, func(a, b tagCount) int {
		if a.count != b.count {
			return b.count - a.count
		}
		return strings.Compare(a.tag, b.tag)
	})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "%d tags, %d distinct\n", len(tags), len(counts))
	for _, c := range counts[:min(len(counts), tagCloudTop)] {
		fmt.Fprintf(w, "%-10s %d\n", c.tag, c.count)
	}
}

// documentTags stands for loading a document's tags: a deterministic mix
// drawn from the vocabulary, different for every document ID.
func (s *tagCloudService) documentTags(doc string) []string {
	x := uint32(len(doc))*2654435761 + 1
	for _, c := range doc {
		x = x*31 + uint32(c)
	}
	tags := make([]string, tagsPerDocument)
	for i := range tags {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		tags[i] = s.vocabulary[x%uint32(len(s.vocabulary))]
	}
	return tags
}

// countTags counts how often each distinct tag occurs.
func (s *tagCloudService) countTags(tags []string) []tagCount {
	if s.env.Fixed {
		byTag := make(map[string]int, len(s.vocabulary))
		for _, t := range tags {
			byTag[t]++
		}
		counts := make([]tagCount, 0, len(byTag))
		for t, n := range byTag {
			counts = append(counts, tagCount{t, n})
		}
		return counts
	}
	var counts []tagCount
	for _, t := range tags {
		found := false
		for i := range counts {
			if counts[i].tag == t {
				counts[i].count++
				found = true
				break
			}
		}
		if !found {
			counts = append(counts, tagCount{t, 1})
		}
	}
	return counts
}
