package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"coffer/internal/api"
	"coffer/internal/api/sigv4"
	"coffer/internal/backup"
	"coffer/internal/backupjob"
	"coffer/internal/clock"
	"coffer/internal/config"
	"coffer/internal/console"
	"coffer/internal/copyjob"
	"coffer/internal/hbr"
	"coffer/internal/jobs"
	"coffer/internal/memlimit"
	"coffer/internal/metrics"
	"coffer/internal/repository"
	"coffer/internal/repository/blob/retry"
	"coffer/internal/repository/blob/s3"
	"coffer/internal/restorejob"
	"coffer/internal/retention"
	"coffer/internal/scheduler"
	"coffer/internal/service"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/localvaults"
	"coffer/internal/vaultrepo/s3vaults"
)

// shutdownTimeout bounds a shutdown (SIGTERM or SIGINT): in-flight requests
// and running jobs get this long in total; the job runner ends the jobs
// whose handler has not returned after jobs.DefaultShutdownGrace. Whatever
// still runs after it is abandoned: the process exits, its leases expire
// and the next start reconciles them, as after a crash.
const shutdownTimeout = 8 * time.Second

const usage = `usage: coffer serve [--config FILE] [--listen HOST:PORT] [--protect DIR ...] [--metrics-listen HOST:PORT]
       coffer vault check --config FILE --vault NAME [--account ID] [--read-data]
       coffer vault repair-index --config FILE --vault NAME [--account ID] [--apply]
       coffer vault prune --config FILE --vault NAME [--account ID] [--dry-run]`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "coffer: "+usage)
		return 2
	}
	switch args[0] {
	case "serve":
		if err := serve(ctx, args[1:], stdout, stderr, nil); err != nil {
			fmt.Fprintln(stderr, "coffer:", err)
			return 1
		}
		return 0
	case "vault":
		return vaultAdmin(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "coffer: unknown command %q\n%s\n", args[0], usage)
	return 2
}

// serve runs `coffer serve`. ready, when non-nil, receives the bound
// address once the listener is open (used by tests).
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (default: zero-config mode)")
	listen := fs.String("listen", "", "override the listen address (host:port)")
	var protect pathList
	fs.Var(&protect, "protect", "zero-config mode: protect this directory as a file system (repeatable)")
	metricsListen := fs.String("metrics-listen", "", "serve /metrics, /healthz and /readyz on this address (host:port; overrides metrics_listen)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	// SIGHUP reloads the TLS certificate; it never stops the server.
	hup, stopHUP := notifyHUP()
	defer stopHUP()
	var cfg *config.Config
	zeroConfig := *cfgPath == ""
	if len(protect) > 0 && !zeroConfig {
		return errors.New("--protect is a flag of the zero-config mode; with --config, list the directories in file_systems")
	}
	generated := false
	if zeroConfig {
		var err error
		cfg, generated, err = config.Default(config.DefaultDataDir)
		if err != nil {
			return err
		}
	} else {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	if err := applyProtect(cfg, protect); err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("--listen: %w", err)
		}
	}
	if *metricsListen != "" {
		cfg.MetricsListen = *metricsListen
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
	}
	log := newLogger(cfg.LogFormat, stderr)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	// A busy port fails the start before anything is opened or cleaned.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	node := nodeID(cfg, ln.Addr().String())
	// Every line names the node, but the serving line starts with the
	// listen address (scripts and tests look for it).
	baseLog := log
	log = log.With("node", node)
	scheme := "http"
	var certs []*certReloader
	if cfg.TLS.Enabled() {
		r, err := newCertReloader("tls", cfg.TLS, log)
		if err != nil {
			return err
		}
		ln, scheme, certs = tlsListener(ln, r), "https", append(certs, r)
	}
	if cfg.MetricsTLS.Enabled() && cfg.MetricsListen == "" {
		return errors.New("metrics_tls is set but the metrics listener is off: set metrics_listen or --metrics-listen")
	}
	var mln *metricsServer
	if cfg.MetricsListen != "" {
		if mln, err = listenMetrics(cfg.MetricsListen); err != nil {
			return err
		}
		defer mln.close()
		if cfg.MetricsTLS.Enabled() {
			r, err := newCertReloader("metrics_tls", cfg.MetricsTLS, log)
			if err != nil {
				return err
			}
			mln.ln, mln.scheme, certs = tlsListener(mln.ln, r), "https", append(certs, r)
		}
	}
	applyMemoryLimit(cfg, log)
	keys, err := loadSecrets(cfg, true)
	if err != nil {
		return err
	}
	tokenKey, master := keys.token, keys.master
	// The metadata store first: a node whose keys are not the ones the
	// store was first used with stops here, before it touches a vault.
	db, err := openMetadata(ctx, cfg, log)
	if err != nil {
		return err
	}
	// A shutdown that gave up on work still running leaves the vault
	// repositories and the store open: the process exits anyway, and
	// closing them could wait for that work.
	abandoned := false
	defer func() {
		if !abandoned {
			db.Close()
		}
	}()
	if err := checkKeys(ctx, db, keys); err != nil {
		return err
	}
	repos, err := openVaultRepos(cfg, master, repository.Options{Clock: clock.Real{}, Logger: log}, log)
	if err != nil {
		return err
	}
	defer func() {
		if !abandoned {
			repos.Close()
		}
	}()
	// Nodes sharing the store learn when another one re-creates a vault.
	var vr vaultRepos = repos
	if cfg.UsesPostgres() {
		vr = newSharedRepos(repos, db)
	}
	// With metrics on, job state changes are counted as they commit.
	st := db
	var mets *metrics.Metrics
	var observer observers
	if mln != nil {
		mets = metrics.New(metrics.Sources{QueueDepth: queueDepth(db), VaultSizes: vaultSizes(db, vr, cfg), Node: node, Logger: log})
		st = mets.Store(db)
		observer = observers{mets}
	}

	creds := api.StaticCredentials{}
	accountOf := map[string]string{}
	for _, a := range cfg.Accounts {
		for _, k := range a.AccessKeys {
			creds[k.AccessKeyID] = k.SecretAccessKey
			accountOf[k.AccessKeyID] = a.ID
		}
	}
	clk := clock.Real{}
	reg, err := plugins(cfg, log)
	if err != nil {
		return err
	}
	// The sweeper reclaims space: it prunes vaults where recovery points
	// were deleted and where backups or copies failed, were stopped or were
	// interrupted (each marks its vaults), at most once per vault per sweep.
	sweeper := &retention.Sweeper{Store: st, Repos: vr, Clock: clk, Logger: log}
	svc, err := service.New(service.Deps{Store: st, Clock: clk, Plugins: reg, Repos: vr, VaultStorage: vr,
		RecoveryPointData: &retention.ReclaimOnDelete{RecoveryPointData: vr, Sweeper: sweeper}, Logger: log})
	if err != nil {
		return err
	}
	if err := syncResources(ctx, svc, reg, cfg); err != nil {
		return err
	}
	if len(protect) > 0 {
		if err := ensureDefaultVault(ctx, svc, cfg); err != nil {
			return err
		}
	}
	// Restores: remove staging areas of restores a crash interrupted, but
	// never one whose job another live server may still run (I-8).
	// A file system that cannot be read (gone, permissions) must not keep
	// the server from starting: what is left is retried at the next start.
	if err := restorejob.CleanStaging(ctx, st, reg.Plugins(), scopes(cfg), clk.Now()); err != nil {
		log.Warn("restore staging cleanup incomplete; retried at the next start", "err", err)
	}
	// Job handlers, one per kind; the runner claims jobs of these kinds.
	handlers := []jobs.Handler{
		&retention.ReclaimAfterFailure{Handler: &backupjob.Handler{Store: st, Repos: vr, Clock: clk, Plugins: reg},
			Sweeper: sweeper, Vaults: backupVaults},
		&retention.ReclaimAfterFailure{Handler: &copyjob.Handler{Store: st, Repos: vr, Clock: clk},
			Sweeper: sweeper, Vaults: copyVaults},
		&restorejob.Handler{Store: st, Repos: vr, Clock: clk, Plugins: reg},
	}
	if sr, ok := vr.(*sharedRepos); ok {
		handlers[0] = &announceWrites{Handler: handlers[0], repos: sr, vaults: backupVaults}
		handlers[1] = &announceWrites{Handler: handlers[1], repos: sr, vaults: copyVaults}
	}
	// The lease owner is the node: any node's reconciliation ends the jobs
	// of a node that stopped heartbeating within about one lease period.
	runner, err := jobs.New(jobs.Options{Store: st, Clock: clk, Handlers: handlers, Workers: cfg.Workers, Logger: log,
		LeaseTTL: cfg.LeaseTTL(), Owner: node})
	if err != nil {
		return err
	}
	svc.SetNotifier(runner)
	// Backup plans: the scheduler starts their jobs through the service; its
	// occurrence claims name the node, like the job leases.
	sched, err := scheduler.New(scheduler.Options{Service: svc, Clock: clk, Logger: log, Owner: node})
	if err != nil {
		return err
	}
	svc.SetPlanNotifier(sched)
	srv, err := api.New(api.Config{Region: cfg.Region, ManagementAccount: cfg.Organization.ManagementAccount,
		AccountOf: accountOf, TokenKey: tokenKey,
		Limits: api.Limits{MaxConcurrentRequests: cfg.MaxConcurrentRequests}},
		api.Deps{Clock: clk, Logger: log, Service: svc, Observer: observer.api(),
			Auth: api.SigV4{V: &sigv4.Verifier{Creds: creds, Clock: clk, Service: "backup", Region: cfg.Region, MaxSkew: 15 * time.Minute}}})
	if err != nil {
		return err
	}
	// The Alibaba Cloud Backup (HBR) API on the same listener, with the
	// same accounts' access keys.
	hsrv, err := hbr.New(hbr.Config{Region: cfg.Region, RegionID: cfg.HBRRegion(), ManagementAccount: cfg.Organization.ManagementAccount,
		AccountOf: accountOf}, hbr.Deps{Service: svc, Creds: creds, Clock: clk, Logger: log, Nonces: hbrNonces(cfg, st), Observer: observer.hbr()})
	if err != nil {
		return err
	}
	// The web console on the same listener, with the same access keys.
	consoleKeys := map[string]console.Key{}
	for _, a := range cfg.Accounts {
		for _, k := range a.AccessKeys {
			consoleKeys[k.AccessKeyID] = console.Key{Secret: k.SecretAccessKey, Account: a.ID}
		}
	}
	ccfg := console.Config{Region: cfg.Region, ManagementAccount: cfg.Organization.ManagementAccount, Keys: consoleKeys, Clock: clk, Logger: log,
		Sessions: storeSessions{st: db}}
	if mets != nil {
		ccfg.Observer = mets
	}
	cons, err := console.New(ccfg, svc)
	if err != nil {
		return err
	}

	// Background roles and the API run until ctx ends (SIGTERM) or the
	// listener fails; nothing after this point returns early.
	bg, stopBg := context.WithCancel(ctx)
	defer stopBg()
	runnerDone := make(chan struct{})
	go func() {
		if err := runner.Run(bg); err != nil {
			log.Error("job runner stopped", "err", err)
		}
		close(runnerDone)
	}()
	interval := retention.DefaultInterval
	if cfg.SweeperIntervalSeconds > 0 {
		interval = time.Duration(cfg.SweeperIntervalSeconds) * time.Second
	}
	sweeperDone := make(chan struct{})
	go func() { sweeper.Run(bg, interval); close(sweeperDone) }()
	if cfg.UsesPostgres() {
		go expireNonces(bg, st, clk.Now, nonceExpiryInterval, log)
	}
	hupDone := make(chan struct{})
	go func() { watchHUP(bg, hup, certs, log); close(hupDone) }()
	schedDone := make(chan struct{})
	go func() { sched.Run(bg); close(schedDone) }()
	httpCtx, stopHTTP := context.WithCancel(ctx)
	defer stopHTTP()
	var serveErr error
	httpDone := make(chan struct{})
	go func() { serveErr = srv.ServeHandler(httpCtx, ln, frontEnds(srv, hsrv, cons)); close(httpDone) }()

	addr := ln.Addr().String()
	metaType := "sqlite"
	if cfg.UsesPostgres() {
		metaType = "postgres"
	}
	baseLog.Info("coffer serving", "listen", addr, "scheme", scheme, "node", node, "metadata", metaType, "lease", cfg.LeaseTTL(), "region", cfg.Region, "hbr_region_id", cfg.HBRRegion(), "data_dir", cfg.DataDir, "accounts", len(cfg.Accounts))
	if zeroConfig {
		ak := cfg.Accounts[0].AccessKeys[0]
		if generated {
			fmt.Fprintf(stdout, "# generated credentials for account %s, stored in %s\n", cfg.Accounts[0].ID,
				filepath.Join(cfg.DataDir, config.CredentialsFile))
		}
		fmt.Fprintf(stdout, "export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s\n", ak.AccessKeyID, ak.SecretAccessKey, cfg.Region)
		fmt.Fprintf(stdout, "aws backup list-backup-vaults --endpoint-url %s://%s\n", scheme, addr)
		fmt.Fprintf(stdout, "# web console: %s://%s/console/ (sign in with the access key above)\n", scheme, addr)
		printProtectLines(stdout, cfg, scheme+"://"+addr)
	}
	if mln != nil {
		mln.serve(mets.Handler(metrics.HandlerOptions{Logger: log,
			Ready: map[string]metrics.Check{"store": storeReady(db, cfg), "vault_storage": vaultStorageReady(cfg)}}), log)
		log.Info("metrics serving", "metrics_listen", mln.ln.Addr().String(), "scheme", mln.scheme)
	}
	if ready != nil {
		ready <- addr
	}
	select {
	case <-ctx.Done():
	case <-httpDone:
	}
	// Shut down: stop accepting requests and jobs, cancel running jobs
	// (they end Interrupted), and wait at most shutdownTimeout in all.
	log.Info("coffer shutting down", "timeout", shutdownTimeout)
	stopHTTP()
	stopBg()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	for _, role := range []struct {
		name string
		done <-chan struct{}
	}{{"api", httpDone}, {"job runner", runnerDone}, {"retention sweeper", sweeperDone}, {"certificate reloader", hupDone}, {"plan scheduler", schedDone}} {
		select {
		case <-role.done:
		case <-sctx.Done():
			abandoned = true
			log.Error("shutdown timed out; exiting without waiting", "role", role.name, "timeout", shutdownTimeout)
		}
	}
	if !abandoned {
		// Closing waits for what still uses the repositories and the store
		// (a job handler the runner gave up on): bounded too.
		closed := make(chan struct{})
		go func() { repos.Close(); db.Close(); close(closed) }()
		select {
		case <-closed:
		case <-sctx.Done():
			log.Error("shutdown timed out closing the vault repositories and the store; exiting without waiting", "timeout", shutdownTimeout)
		}
		abandoned = true // closed (or given up on): the deferred closes are done
	}
	log.Info("coffer stopped")
	select {
	case <-httpDone:
		if serveErr != nil && !errors.Is(serveErr, context.Canceled) && ctx.Err() == nil {
			return serveErr
		}
	default:
	}
	return nil
}

// backupVaults is the vault a backup job writes into.
func backupVaults(j *backup.Job) []*backup.Vault {
	return []*backup.Vault{{AccountID: j.AccountID, Region: j.Region, Name: j.VaultName}}
}

// copyVaults is the vault a copy job writes into (the destination).
func copyVaults(j *backup.Job) []*backup.Vault {
	p, err := copyjob.ParseParams(j.ParametersJSON)
	if err != nil {
		return nil
	}
	return []*backup.Vault{{AccountID: p.DestinationAccount, Region: j.Region, Name: p.DestinationVaultName}}
}

// applyMemoryLimit sets the runtime's soft memory limit from
// memory_limit_mib (default: one engine session per job worker), a limit
// of the process's resident memory.
func applyMemoryLimit(cfg *config.Config, log *slog.Logger) {
	limit := int64(cfg.MemoryLimitMiB) << 20
	switch cfg.MemoryLimitMiB {
	case 0:
		workers := cfg.Workers
		if workers == 0 {
			workers = jobs.DefaultWorkers
		}
		limit = memlimit.Default(workers)
	case -1:
		limit = -1
	}
	eff, src := memlimit.Apply(limit)
	switch src {
	case "off":
		log.Info("memory limit", "mib", "none", "source", src)
	case "GOMEMLIMIT":
		log.Info("memory limit", "runtime_mib", eff>>20, "source", src)
	default:
		log.Info("memory limit", "mib", limit>>20, "runtime_mib", eff>>20, "source", src)
	}
}

// openVaultRepos places vault repositories as vault_storage says. Their
// write sessions share one budget of pack and chunk buffers.
func openVaultRepos(cfg *config.Config, master []byte, opts repository.Options, log *slog.Logger) (*vaultrepo.Manager, error) {
	if opts.Buffers == nil {
		opts.Buffers = repository.DefaultBuffers()
		if cfg.VaultStorage.Type == config.VaultStorageS3 {
			// An S3 upload takes longer than a local one (a write into
			// the page cache): one session keeps two uploads going while
			// its workers fill packs, as before the budget was shared.
			// (Not measured on S3 with the shared budget.)
			opts.Buffers = repository.NewBuffers(runtime.GOMAXPROCS(0)+1, 8<<20)
		}
	}
	if cfg.VaultStorage.Type != config.VaultStorageS3 {
		return localvaults.New(cfg.DataDir, master, opts)
	}
	s := cfg.VaultStorage.S3
	log.Info("vault repositories on S3", "s3", *s)
	return s3vaults.New(s3vaults.Options{
		S3: s3.Config{Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, Prefix: s.Prefix,
			AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey, PathStyle: s.PathStyle},
		Retry: retry.Options{Logger: log},
	}, master, opts)
}
