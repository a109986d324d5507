package leaks

import (
	"fmt"
	"net/http"
	"regexp"
)

func init() {
	register(&Service{
		Name:    "regexp-per-request",
		Kind:    KindCPU,
		Summary: "Sign-ups cost far more CPU than validating an e-mail address should, and the GC runs constantly: each request allocates around 100 KB.",
		Hints: []string{
			"A CPU profile under load is dominated by regexp.Compile and the GC, not by matching.",
			"The e-mail pattern never changes, yet it is compiled again for every request.",
			"Compile it once, at package level with regexp.MustCompile; a *regexp.Regexp is safe for concurrent use.",
		},
		Culprit:   pkgPath + ".(*signupService).validateEmail",
		Profile:   "cpu",
		Endpoints: []Endpoint{{Method: "POST", Path: "/signup?email=user{i}@example.com", Doc: "validates an e-mail address and signs the user up"}},
		Symptom:   Symptom{Metric: "go_gc_heap_allocs_bytes_total", PerRequest: true, Leaky: 40 << 10, Fixed: 16 << 10},
		Explanation: "regexp.Compile parses the pattern, builds and optimises a program, and allocates all of it, which costs " +
			"far more than running the match. The fixed variant compiles the pattern once when the service starts.",
		build: func(env *Env) (http.Handler, error) {
			s := &signupService{env: env}
			if env.Fixed {
				s.email = emailRE
			}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /signup", s.signup)
			return mux, nil
		},
	})
}

// emailPattern is deliberately thorough, as such patterns tend to be.
const emailPattern = `^(?i)[a-z0-9!#$%&'*+/=?^_{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`

var emailRE = regexp.MustCompile(emailPattern)

type signupService struct {
	env   *Env
	email *regexp.Regexp // nil in the leaky variant: compiled per call
}

func (s *signupService) signup(w http.ResponseWriter, r *http.Request) {
	addr := r.URL.Query().Get("email")
	if !s.validateEmail(addr) {
		http.Error(w, "invalid e-mail address", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "welcome, %s\n", addr)
}

// validateEmail reports whether addr looks like an e-mail address.
func (s *signupService) validateEmail(addr string) bool {
	re := s.email
	if re == nil {
		re = regexp.MustCompile(emailPattern)
	}
	return re.MatchString(addr)
}
