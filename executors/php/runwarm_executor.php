<?php

// runwarm executor shim for PHP (protocol v1, handler mode). PHP >= 8.1 CLI, bundled extensions
// only (json; FFI for the fd set-up, see below).
//
// Speaks the JSON Lines protocol of protocol/PROTOCOL.md with the runwarm supervisor: reads
// `init`, requires the script's entry once, then calls its handler once per `request`, strictly
// one message at a time.
//
// File descriptors: the protocol arrives on fd 0 and leaves on fd 1, user stdout belongs on the
// fd named in RUNWARM_STDOUT_FD (3), user stderr on fd 2. PHP has no dup2(), so the shim calls
// libc through FFI: before any user code runs it keeps private close-on-exec duplicates of fds 0
// and 1 for the protocol, reads and writes them with read(2)/write(2) (PHP streams would dup them
// again without close-on-exec, leaking them into every child), then points fd 1 at the user
// stdout pipe and fd 0 at /dev/null. `echo`, fwrite(STDOUT), warnings shown on stdout and child
// processes therefore all write user output where it belongs, and nothing the script does can
// read or forge protocol bytes.
//
// Without FFI (ffi.enable=false) the shim falls back to an output buffer that diverts `echo` and
// `print` to the user stdout fd and says so on stderr; fwrite(STDOUT) and inherited fd 1 then still
// reach the protocol channel, which the supervisor treats as a protocol fault.

declare(strict_types=1);

namespace Runwarm;

const PROTOCOL_VERSION = 1;
// Compact, readable and exact: floats keep their ".0" so they stay floats on the other side.
const JSON_OUT = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION
    | JSON_THROW_ON_ERROR;
// Deeper data is refused instead of risking the C stack of json_encode.
const JSON_DEPTH = 4096;

function note(string $text): void
{
    @fwrite(\STDERR, "runwarm: $text\n");
}

/** Raw fds through libc, for what PHP cannot do itself. */
final class Libc
{
    private const F_DUPFD_CLOEXEC = 1030;
    private const O_RDONLY = 0;
    private const EINTR = 4;
    private const EAGAIN = 11;

    private \FFI $ffi;
    private \FFI\CData $buf;

    public function __construct()
    {
        // fcntl and open are variadic in C; declaring the fixed arguments we pass is ABI-compatible
        // on Linux and keeps FFI from promoting them.
        $this->ffi = \FFI::cdef(
            'int dup2(int, int); int fcntl(int, int, int); int open(const char *, int); int close(int);'
            . ' long read(int, void *, unsigned long); long write(int, const void *, unsigned long);'
            . ' int *__errno_location(void);',
            'libc.so.6',
        );
        $this->buf = \FFI::new('char[65536]');
    }

    public function dupCloexec(int $fd): int
    {
        $new = $this->ffi->fcntl($fd, self::F_DUPFD_CLOEXEC, 10);
        if ($new < 0) {
            throw new \RuntimeException("fcntl(F_DUPFD_CLOEXEC) on fd $fd failed (errno {$this->errno()})");
        }
        return $new;
    }

    public function dup2(int $from, int $to): void
    {
        if ($this->ffi->dup2($from, $to) < 0) {
            throw new \RuntimeException("dup2($from, $to) failed (errno {$this->errno()})");
        }
    }

    public function devNullOnto(int $fd): void
    {
        $null = $this->ffi->open('/dev/null', self::O_RDONLY);
        if ($null < 0) {
            throw new \RuntimeException("open(/dev/null) failed (errno {$this->errno()})");
        }
        $this->dup2($null, $fd);
        $this->ffi->close($null);
    }

    public function isOpen(int $fd): bool
    {
        $probe = $this->ffi->fcntl($fd, self::F_DUPFD_CLOEXEC, 10);
        if ($probe < 0) {
            return false;
        }
        $this->ffi->close($probe);
        return true;
    }

    /** The next chunk, or null at EOF or on an error that will not go away. */
    public function read(int $fd): ?string
    {
        while (true) {
            $n = $this->ffi->read($fd, $this->buf, 65536);
            if ($n > 0) {
                return \FFI::string($this->buf, $n);
            }
            if ($n === 0) {
                return null;
            }
            $errno = $this->errno();
            if ($errno === self::EAGAIN) {
                usleep(1000);
            } elseif ($errno !== self::EINTR) {
                note("reading the protocol failed (errno $errno)");
                return null;
            }
        }
    }

    /** Writes all of $data, also after partial writes and on a non-blocking fd. */
    public function writeAll(int $fd, string $data): bool
    {
        while ($data !== '') {
            $n = $this->ffi->write($fd, $data, \strlen($data));
            if ($n > 0) {
                $data = (string) substr($data, $n);
                continue;
            }
            $errno = $this->errno();
            if ($errno === self::EAGAIN) {
                usleep(1000);
            } elseif ($errno !== self::EINTR) {
                return false;
            }
        }
        return true;
    }

    private function errno(): int
    {
        return $this->ffi->__errno_location()[0];
    }
}

/** The protocol fds: lines in, messages out. */
final class Channel
{
    private string $pending = '';
    private int $scanned = 0;
    private bool $eof = false;

    private function __construct(
        private readonly ?Libc $libc,
        private readonly int $inFd,
        private readonly int $outFd,
        /** @var resource|null */
        private readonly mixed $inStream,
        /** @var resource|null */
        private readonly mixed $outStream,
    ) {
    }

    /** Moves user stdio off the protocol fds and returns the channel on private copies. */
    public static function takeOverFds(): self
    {
        $named = getenv('RUNWARM_STDOUT_FD');
        $libc = null;
        try {
            $libc = new Libc();
        } catch (\Throwable $e) {
            note('FFI is not available (' . $e->getMessage() . '); only echo/print are kept off the'
                . ' protocol channel, fwrite(STDOUT) and child processes are not');
        }
        if ($libc !== null) {
            $user = 2; // without a user stdout pipe, stderr is the only safe place for user output
            if ($named !== false) {
                if (preg_match('/\A[0-9]+\z/', $named) === 1 && $libc->isOpen((int) $named)) {
                    $user = (int) $named;
                } else {
                    note("RUNWARM_STDOUT_FD=$named is not an open fd; user stdout goes to stderr");
                }
            }
            $in = $libc->dupCloexec(0);
            $out = $libc->dupCloexec(1);
            $libc->dup2($user, 1);
            $libc->devNullOnto(0);
            return new self($libc, $in, $out, null, null);
        }
        $target = $named !== false && preg_match('/\A[0-9]+\z/', $named) === 1 ? @fopen("php://fd/$named", 'wb') : false;
        if ($target === false) {
            $target = \STDERR;
        }
        ob_start(static function (string $buffer) use ($target): string {
            if ($buffer !== '') {
                @fwrite($target, $buffer);
            }
            return '';
        }, 1);
        return new self(null, 0, 1, \STDIN, \STDOUT);
    }

    /** The next line without its "\n", or null at EOF. */
    public function readLine(): ?string
    {
        if ($this->libc === null) {
            $line = fgets($this->inStream);
            return $line === false ? null : rtrim($line, "\n");
        }
        while (true) {
            $nl = strpos($this->pending, "\n", $this->scanned);
            if ($nl !== false) {
                $line = substr($this->pending, 0, $nl);
                $this->pending = substr($this->pending, $nl + 1);
                $this->scanned = 0;
                return $line;
            }
            $this->scanned = \strlen($this->pending);
            $chunk = $this->eof ? null : $this->libc->read($this->inFd);
            if ($chunk === null) {
                $this->eof = true;
                if ($this->pending === '') {
                    return null;
                }
                $line = $this->pending;
                $this->pending = '';
                return $line;
            }
            $this->pending .= $chunk;
        }
    }

    public function sendLine(string $line): void
    {
        $ok = $this->libc !== null
            ? $this->libc->writeAll($this->outFd, $line)
            : @fwrite($this->outStream, $line) === \strlen($line);
        if (!$ok) {
            note('the protocol channel is gone; exiting');
            Executor::$current?->markIdle();
            exit(1);
        }
    }

    /** @param array<string, mixed> $msg */
    public function send(array $msg): void
    {
        $this->sendLine(json_encode($msg, JSON_OUT | JSON_INVALID_UTF8_SUBSTITUTE, JSON_DEPTH) . "\n");
    }
}

/**
 * What a handler gets besides the event. `log` sends a structured record tagged with the
 * request, so the supervisor files it under this execution.
 */
final class Context
{
    public readonly string $requestId;
    public readonly string $executionId;
    public readonly int $deadlineMs;
    public readonly int $attempt;
    /** @var array{uid?: int, gid?: int, pid?: int} */
    public readonly array $caller;

    /** @param array<string, mixed> $ctx */
    public function __construct(string $requestId, array $ctx, private readonly Channel $channel)
    {
        $this->requestId = $requestId;
        $this->executionId = (string) ($ctx['execution_id'] ?? '');
        $this->deadlineMs = (int) ($ctx['deadline_ms'] ?? 0);
        $this->attempt = (int) ($ctx['attempt'] ?? 1);
        $this->caller = \is_array($ctx['caller'] ?? null) ? $ctx['caller'] : [];
    }

    public function remainingMs(): int
    {
        return max(0, $this->deadlineMs - (int) floor(microtime(true) * 1000));
    }

    /** The name AWS Lambda (and Bref) use, so ported handlers keep working. */
    public function getRemainingTimeInMillis(): int
    {
        return $this->remainingMs();
    }

    /** @param array<string, mixed> $fields */
    public function log(string|\Stringable $message, string $level = 'info', array $fields = []): void
    {
        $msg = ['type' => 'log', 'id' => $this->requestId, 'level' => $level, 'message' => (string) $message];
        if ($fields !== []) {
            // `fields` must be a JSON object even when the array is a list.
            $msg['fields'] = (object) $fields;
        }
        Executor::flushUserOutput();
        try {
            $line = json_encode($msg, JSON_OUT, JSON_DEPTH);
        } catch (\JsonException) {
            $msg['fields'] = (object) array_map(
                static fn (mixed $v): string => \is_scalar($v) ? (string) $v : get_debug_type($v),
                $fields,
            );
            $line = json_encode($msg, JSON_OUT | JSON_INVALID_UTF8_SUBSTITUTE);
        }
        $this->channel->sendLine($line . "\n");
    }
}

final class InitFailure extends \Exception
{
    public function __construct(public readonly string $kind, string $message)
    {
        parent::__construct($message);
    }
}

final class Executor
{
    public static ?Executor $current = null;

    /** What a fatal error or exit() interrupts, for the shutdown function. */
    private string $state = 'starting';
    private ?string $requestId = null;
    /** @var (\Closure(mixed, Context): mixed)|null */
    private ?\Closure $handler = null;
    private string $entry = '';
    private string $handlerName = 'handler';

    /** Output buffers that belong to the shim (the fallback's diversion), not to the script. */
    private int $obBase = 0;

    private function __construct(private readonly Channel $channel)
    {
    }

    public static function start(): self
    {
        $self = new self(Channel::takeOverFds());
        $self->obBase = ob_get_level();
        self::$current = $self;
        set_time_limit(0);
        register_shutdown_function([$self, 'onShutdown']);
        return $self;
    }

    public static function flushUserOutput(): void
    {
        // A buffer the script opened and never closed would hold output past its response.
        $base = self::$current === null ? ob_get_level() : self::$current->obBase;
        while (ob_get_level() > $base) {
            if (!@ob_end_flush()) {
                break;
            }
        }
        if ($base > 0) {
            @ob_flush();
        }
        flush();
        foreach ([\STDOUT, \STDERR] as $stream) {
            if (\is_resource($stream)) {
                @fflush($stream);
            }
        }
    }

    /**
     * Serves messages until `init` arrives, applies it and returns the absolute entry path; sends
     * `init_error` and exits for anything that fails before the entry runs.
     */
    public function awaitInit(): string
    {
        $this->state = 'init';
        while (true) {
            $msg = $this->nextMessage();
            if (($msg['type'] ?? null) === 'init') {
                break;
            }
            $this->dispatch($msg);
        }
        try {
            $protocol = $msg['protocol'] ?? PROTOCOL_VERSION;
            if ($protocol !== PROTOCOL_VERSION) {
                throw new InitFailure('UnsupportedProtocol', sprintf(
                    'this executor speaks protocol %d, not %s',
                    PROTOCOL_VERSION,
                    json_encode($protocol),
                ));
            }
            $script = \is_array($msg['script'] ?? null) ? $msg['script'] : [];
            $mode = $script['mode'] ?? 'handler';
            if ($mode !== 'handler') {
                throw new InitFailure('UnsupportedMode', 'the php executor serves handler mode only, not ' . json_encode($mode));
            }
            foreach (\is_array($msg['env'] ?? null) ? $msg['env'] : [] as $k => $v) {
                $v = $v === null ? '' : (\is_scalar($v) ? (string) $v : json_encode($v));
                putenv("$k=$v");
                $_ENV[$k] = $_SERVER[$k] = $v;
            }
            $root = realpath((string) ($script['root'] ?? '.'));
            $this->entry = (string) ($script['entry'] ?? '');
            $this->handlerName = (string) ($script['handler'] ?? 'handler');
            $path = $root === false ? false : realpath($root . '/' . $this->entry);
            if ($this->entry === '' || $path === false || !is_file($path)) {
                throw new InitFailure('EntryNotFound', sprintf(
                    'entry %s not found in %s',
                    json_encode($this->entry, JSON_UNESCAPED_SLASHES),
                    $root === false ? (string) ($script['root'] ?? '') : $root,
                ));
            }
            chdir($root);
            set_include_path($root . PATH_SEPARATOR . get_include_path());
            return $path;
        } catch (\Throwable $e) {
            $this->initFailed($e);
        }
    }

    /** Turns whatever the entry returned and defined into the handler, then answers `ready`. */
    public function entryLoaded(mixed $returned): void
    {
        try {
            $this->handler = $this->resolveHandler($returned);
        } catch (\Throwable $e) {
            $this->initFailed($e);
        }
        $this->state = 'idle';
        self::flushUserOutput();
        $this->channel->send([
            'type' => 'ready',
            'protocol' => PROTOCOL_VERSION,
            'runtime' => sprintf('php%d.%d.%d', PHP_MAJOR_VERSION, PHP_MINOR_VERSION, PHP_RELEASE_VERSION),
            'pid' => getmypid(),
        ]);
    }

    public function initFailed(\Throwable $e): never
    {
        if ($e instanceof InitFailure) {
            $error = ['kind' => $e->kind, 'message' => $e->getMessage()];
        } else {
            $error = self::errorBody($e);
            $error['message'] = "loading {$this->entry}: {$error['message']}";
        }
        $this->state = 'done';
        self::flushUserOutput();
        $this->channel->send(['type' => 'init_error', 'error' => $error]);
        exit(1);
    }

    private function resolveHandler(mixed $returned): \Closure
    {
        $name = $this->handlerName;
        $entry = $this->entry;
        if (str_contains($name, '::')) {
            [$class, $method] = explode('::', $name, 2);
            if (!class_exists($class)) {
                throw new InitFailure('HandlerNotFound', "$entry defines no class $class (for handler $name)");
            }
            if (!method_exists($class, $method)) {
                throw new InitFailure('HandlerNotFound', "class $class has no method $method");
            }
            $ref = new \ReflectionMethod($class, $method);
            if (!$ref->isStatic() || !$ref->isPublic()) {
                throw new InitFailure('HandlerNotCallable', "$name must be a public static method");
            }
            return self::adapt($ref->getClosure(null), $ref);
        }
        if (\function_exists($name)) {
            $ref = new \ReflectionFunction($name);
            return self::adapt($ref->getClosure(), $ref);
        }
        // `namespace App; function handler()` is found as "handler" too, when it is the only one.
        $matches = array_values(array_filter(
            get_defined_functions()['user'],
            static fn (string $f): bool => strcasecmp(substr((string) strrchr('\\' . $f, '\\'), 1), $name) === 0,
        ));
        if (\count($matches) === 1) {
            $ref = new \ReflectionFunction($matches[0]);
            return self::adapt($ref->getClosure(), $ref);
        }
        if (\count($matches) > 1) {
            throw new InitFailure('HandlerNotFound', "handler $name is ambiguous: " . implode(', ', $matches));
        }
        // Bref style: the entry ends with `return function ($event, $context) { … };`.
        if (\is_object($returned) && \is_callable($returned)) {
            $closure = \Closure::fromCallable($returned);
            return self::adapt($closure, new \ReflectionFunction($closure));
        }
        if (class_exists($name, false)) {
            throw new InitFailure('HandlerNotCallable', "$name is a class, not a function; name a function or Class::method");
        }
        throw new InitFailure('HandlerNotFound', "$entry defines no function $name and returns no callable");
    }

    /** User functions ignore extra arguments; internal ones throw, so give them only what they take. */
    private static function adapt(\Closure $fn, \ReflectionFunctionAbstract $ref): \Closure
    {
        if ($ref->isInternal() && !$ref->isVariadic() && $ref->getNumberOfParameters() < 2) {
            return $ref->getNumberOfParameters() === 0
                ? static fn (mixed $event, Context $ctx): mixed => $fn()
                : static fn (mixed $event, Context $ctx): mixed => $fn($event);
        }
        return $fn;
    }

    public function serve(): never
    {
        while (true) {
            $this->dispatch($this->nextMessage());
        }
    }

    /** @return array<string, mixed> */
    private function nextMessage(): array
    {
        while (true) {
            $line = $this->channel->readLine();
            if ($line === null) {
                $this->finish(0); // EOF: the supervisor is gone
            }
            if (trim($line) === '') {
                continue;
            }
            try {
                $msg = json_decode($line, true, JSON_DEPTH, JSON_THROW_ON_ERROR);
            } catch (\JsonException $e) {
                note('ignoring unreadable protocol line (' . $e->getMessage() . ')');
                continue;
            }
            if (\is_array($msg) && \is_string($msg['type'] ?? null)) {
                return $msg;
            }
            note('ignoring a protocol line that is not a message');
        }
    }

    /** @param array<string, mixed> $msg */
    private function dispatch(array $msg): void
    {
        switch ($msg['type']) {
            case 'request':
                $this->request($msg);
                break;
            case 'ping':
                $this->channel->send(['type' => 'pong', 'id' => $msg['id'] ?? null]);
                break;
            case 'init':
                note('ignoring a second init');
                break;
            case 'shutdown':
                $this->finish(0);
                // anything else comes from a newer supervisor: ignored (PROTOCOL.md §3)
        }
    }

    /** @param array<string, mixed> $msg */
    private function request(array $msg): void
    {
        $id = (string) ($msg['id'] ?? '');
        if ($this->handler === null) {
            $this->fail($id, ['kind' => 'NotInitialized', 'message' => 'request before init']);
            return;
        }
        $ctx = new Context($id, \is_array($msg['context'] ?? null) ? $msg['context'] : [], $this->channel);
        $this->state = 'request';
        $this->requestId = $id;
        try {
            $result = ($this->handler)($msg['payload'] ?? null, $ctx);
        } catch (\Throwable $e) {
            $this->markIdle();
            $this->fail($id, self::errorBody($e));
            return;
        }
        $this->markIdle();
        try {
            $line = json_encode(
                ['type' => 'response', 'id' => $id, 'success' => true, 'result' => $result],
                JSON_OUT,
                JSON_DEPTH,
            );
        } catch (\Throwable $e) { // JsonException, and whatever a JsonSerializable throws
            $this->fail($id, ['kind' => 'SerializationError', 'message' => 'result is not JSON: ' . $e->getMessage()]);
            return;
        }
        self::flushUserOutput();
        $this->channel->sendLine($line . "\n");
    }

    public function markIdle(): void
    {
        $this->state = 'idle';
        $this->requestId = null;
    }

    /** @param array<string, mixed> $error */
    private function fail(string $id, array $error): void
    {
        self::flushUserOutput();
        $this->channel->send(['type' => 'response', 'id' => $id, 'success' => false, 'error' => $error]);
    }

    /** @return array{kind: string, message: string, trace: string} */
    public static function errorBody(\Throwable $e): array
    {
        // PROTOCOL.md wants a short class name; the trace keeps the full one.
        $kind = substr((string) strrchr('\\' . $e::class, '\\'), 1);
        $message = $e->getMessage() !== '' ? $e->getMessage() : $kind;
        $trace = '';
        for ($cur = $e, $depth = 0; $cur !== null && $depth < 4; $cur = $cur->getPrevious(), $depth++) {
            $trace .= ($depth > 0 ? "\nCaused by: " : '')
                . sprintf('%s: %s in %s:%d', $cur::class, $cur->getMessage(), $cur->getFile(), $cur->getLine());
            $i = 0;
            foreach ($cur->getTrace() as $frame) {
                // From the first call made by the shim on, the frames are the shim's own.
                if (($frame['file'] ?? null) === __FILE__) {
                    break;
                }
                $trace .= sprintf(
                    "\n#%d %s: %s%s%s()",
                    $i++,
                    isset($frame['file']) ? "{$frame['file']}({$frame['line']})" : '[internal function]',
                    $frame['class'] ?? '',
                    $frame['type'] ?? '',
                    $frame['function'],
                );
            }
        }
        return ['kind' => $kind, 'message' => $message, 'trace' => $trace];
    }

    /**
     * Runs for every exit. A fatal error or an exit() in the middle of init or a request cannot
     * be caught; the executor still answers so the supervisor does not wait for a timeout.
     */
    public function onShutdown(): void
    {
        if ($this->state !== 'init' && $this->state !== 'request') {
            return;
        }
        $last = error_get_last();
        $fatal = $last !== null
            && ($last['type'] & (E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR)) !== 0;
        $error = $fatal
            ? ['kind' => 'FatalError', 'message' => "{$last['message']} in {$last['file']}:{$last['line']}"]
            : ['kind' => 'Exit', 'message' => 'the script called exit(); a warm executor does not exit, so it is replaced'];
        $state = $this->state;
        $id = (string) $this->requestId;
        $this->state = 'done';
        self::flushUserOutput();
        if ($state === 'init') {
            $error['message'] = "loading {$this->entry}: {$error['message']}";
            $this->channel->send(['type' => 'init_error', 'error' => $error]);
            exit(1);
        }
        $this->channel->send(['type' => 'response', 'id' => $id, 'success' => false, 'error' => $error]);
        exit(1);
    }

    /** exit() runs the script's shutdown functions and destructors, as a process exit should. */
    private function finish(int $code): never
    {
        $this->state = 'done';
        self::flushUserOutput();
        exit($code);
    }
}

$__runwarm_entry = Executor::start()->awaitInit();
try {
    // At top level, so the entry's own top-level variables are globals, as they would be in
    // a script run by `php entry.php` (handlers reach them with `global`).
    Executor::$current->entryLoaded(require $__runwarm_entry);
} catch (\Throwable $__runwarm_error) {
    Executor::$current->initFailed($__runwarm_error);
}
unset($__runwarm_entry);
Executor::$current->serve();
