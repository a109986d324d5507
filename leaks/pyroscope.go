package leaks

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/grafana/pyroscope-go"
)

// startPyroscope pushes continuous profiles of this process to url and
// returns a function that flushes and stops the push.
func startPyroscope(service string, v Variant, url string, uploadRate time.Duration, log *slog.Logger) (func(), error) {
	types := []pyroscope.ProfileType{
		pyroscope.ProfileCPU,
		pyroscope.ProfileInuseObjects, pyroscope.ProfileInuseSpace,
		pyroscope.ProfileAllocObjects, pyroscope.ProfileAllocSpace,
		pyroscope.ProfileGoroutines,
		pyroscope.ProfileMutexCount, pyroscope.ProfileMutexDuration,
		pyroscope.ProfileBlockCount, pyroscope.ProfileBlockDuration,
	}
	if GoroutineLeakProfile() {
		types = append(types, pyroscope.ProfileGoroutineLeak)
	}
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: "leaklab." + service,
		ServerAddress:   url,
		Tags:            map[string]string{"service": service, "variant": string(v)},
		ProfileTypes:    types,
		UploadRate:      uploadRate, // zero keeps pyroscope-go's default
		Logger:          pyroscopeLogger{log.With("component", "pyroscope")},
	})
	if err != nil {
		return nil, fmt.Errorf("starting the pyroscope push to %s: %w", url, err)
	}
	log.Info("pushing profiles", "pyroscope", url, "application", "leaklab."+service)
	return func() { _ = p.Stop() }, nil
}

// pyroscopeLogger adapts slog to pyroscope-go's printf-style logger.
type pyroscopeLogger struct{ log *slog.Logger }

func (l pyroscopeLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

func (l pyroscopeLogger) Debugf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

func (l pyroscopeLogger) Errorf(format string, args ...any) {
	l.log.Warn(fmt.Sprintf(format, args...))
}
