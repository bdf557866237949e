//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mnist/data"
)

// loadRequest is one request of a load run and the digit it must get.
type loadRequest struct {
	contentType string
	body        []byte
	digit       int
}

// loadRequests are what the page sends (a 280×280 canvas PNG of a test
// digit) and what an API client sends (JSON pixels), for the first n test
// images, each with the digit the classifier gives it.
func loadRequests(t testing.TB, c classifier, n int) []loadRequest {
	t.Helper()
	_, test, err := data.Load(context.Background(), realDataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	var reqs []loadRequest
	for i := range n {
		img := test.Images[i*data.ImageSize : (i+1)*data.ImageSize]
		body := pngBytes(t, darkOnLight(img, 9, 280, 280))
		seen, err := data.ImageBytesToMNIST(body)
		if err != nil {
			t.Fatal(err)
		}
		px := make([]float64, data.ImageSize)
		for k, v := range img {
			px[k] = float64(v)
		}
		for _, r := range []struct {
			ct     string
			body   []byte
			pixels []byte
		}{{"image/png", body, seen}, {"application/json", pixelsJSON(px), img}} {
			lp, err := c.classify(context.Background(), &data.Set{Images: r.pixels, Labels: make([]byte, 1)})
			if err != nil {
				t.Fatal(err)
			}
			reqs = append(reqs, loadRequest{r.ct, r.body, topClasses(lp, 1)[0].Digit})
		}
	}
	return reqs
}

// loadRun is the outcome of runLoad.
type loadRun struct {
	latencies []time.Duration // sorted
	elapsed   time.Duration
}

func (r loadRun) percentile(p float64) time.Duration {
	return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
}

func (r loadRun) perSecond() float64 {
	return float64(len(r.latencies)) / r.elapsed.Seconds()
}

// runLoad sends n requests, cycling through reqs, from `workers`
// goroutines at once, and checks every answer.
func runLoad(t testing.TB, client *http.Client, url string, reqs []loadRequest, n, workers int) loadRun {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				r := reqs[i%len(reqs)]
				t0 := time.Now()
				err := postOnce(client, url, r)
				lat[i] = time.Since(t0)
				if err != nil && failed.Add(1) <= 3 {
					t.Errorf("request %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	run := loadRun{latencies: lat, elapsed: time.Since(start)}
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d requests failed", f, n)
	}
	slices.Sort(run.latencies)
	return run
}

func postOnce(client *http.Client, url string, r loadRequest) error {
	res, err := client.Post(url, r.contentType, bytes.NewReader(r.body))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var p prediction
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		return fmt.Errorf("status %d, answer not JSON: %w", res.StatusCode, err)
	}
	if res.StatusCode != http.StatusOK || p.Digit != r.digit {
		return fmt.Errorf("status %d, digit %d, want 200 and %d", res.StatusCode, p.Digit, r.digit)
	}
	return nil
}

func loadClient(workers int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
}

// TestServeLoadNoLeak: after 1,200 concurrent requests (32 at once) every
// goroutine the server and client started is gone once both close, and
// the heap after the second 800 is not larger than after the first 400
// by more than 16 MiB (a leak of 20 KiB a request would show).
func TestServeLoadNoLeak(t *testing.T) {
	const workers = 32
	c, info := openTestClassifier(t, servedModel(t))
	reqs := loadRequests(t, c, 8)
	runtime.GC()
	baseline := runtime.NumGoroutine()

	ts := newTestServer(t, c, info)
	client := loadClient(workers)
	url := ts.URL + "/api/predict"
	runLoad(t, client, url, reqs, 400, workers)
	var warm, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&warm)
	runLoad(t, client, url, reqs, 800, workers)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(warm.HeapAlloc); grown > 16<<20 {
		t.Errorf("the heap grew by %d MiB over 800 requests", grown>>20)
	}

	ts.Close()
	client.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines 5 s after closing, %d before the server started:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
}

// BenchmarkServeLoad measures the server on 127.0.0.1 under 1 and 32
// concurrent clients, half sending canvas PNGs and half JSON pixels: run
// with -benchtime 2000x for the figures in docs/serve.md.
func BenchmarkServeLoad(b *testing.B) {
	c, info := openTestClassifier(b, servedModel(b))
	reqs := loadRequests(b, c, 8)
	ts := newTestServer(b, c, info)
	for _, workers := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", workers), func(b *testing.B) {
			client := loadClient(workers)
			defer client.CloseIdleConnections()
			b.ResetTimer()
			run := runLoad(b, client, ts.URL+"/api/predict", reqs, b.N, workers)
			b.StopTimer()
			b.ReportMetric(float64(run.percentile(0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(run.percentile(0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(run.perSecond(), "req/s")
		})
	}
}
