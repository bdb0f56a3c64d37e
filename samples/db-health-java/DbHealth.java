// Database health check over JDBC, against a SQLite file: connect (creating the file if it is
// missing), `select sqlite_version()`, a write/read round trip through a probe table, and
// `pragma quick_check`. Returns what it found and how long each step took.
//
// The driver is org.xerial:sqlite-jdbc from pom.xml. On first use it extracts its native
// library to java.io.tmpdir, which inside the sandbox is the executor's private /tmp; the JVM
// stays warm, so that happens once per executor, not per request.

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;

import runwarm.Context;

public final class DbHealth {
    private DbHealth() {}

    static final String DEFAULT_PATH = "/tmp/runwarm-db-health.sqlite";

    /** Thrown when a step's answer is wrong (as opposed to a SQLException). */
    public static final class UnhealthyDatabase extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UnhealthyDatabase(String message) {
            super(message);
        }
    }

    public static Map<String, Object> handler(Map<String, Object> event, Context ctx) throws SQLException {
        String path = event.get("path") instanceof String ? (String) event.get("path") : DEFAULT_PATH;
        long keepRows = event.get("keep_rows") instanceof Long ? (Long) event.get("keep_rows") : 100L;
        boolean memory = ":memory:".equals(path);
        boolean existed = !memory && Files.exists(Paths.get(path));
        if (!memory) {
            Path parent = Paths.get(path).toAbsolutePath().getParent();
            if (parent == null || !Files.isDirectory(parent)) {
                throw new IllegalArgumentException("no directory for " + path + " (only /tmp is writable in the sandbox)");
            }
        }

        Map<String, Object> timings = new LinkedHashMap<>();
        Map<String, Object> out = new LinkedHashMap<>();
        long start = System.nanoTime();
        long t = start;

        try (Connection conn = DriverManager.getConnection("jdbc:sqlite:" + path)) {
            t = lap(timings, "connect_ms", t);
            DatabaseMetaData meta = conn.getMetaData();

            String version;
            try (Statement st = conn.createStatement();
                    ResultSet rs = st.executeQuery("select sqlite_version()")) {
                rs.next();
                version = rs.getString(1);
            }
            t = lap(timings, "version_ms", t);

            String token = UUID.randomUUID().toString();
            long id;
            long rows;
            conn.setAutoCommit(false);
            try (Statement st = conn.createStatement()) {
                st.execute("create table if not exists health_probe ("
                        + "id integer primary key autoincrement, token text not null, written_at integer not null)");
                try (PreparedStatement ins = conn.prepareStatement(
                        "insert into health_probe (token, written_at) values (?, ?)", Statement.RETURN_GENERATED_KEYS)) {
                    ins.setString(1, token);
                    ins.setLong(2, System.currentTimeMillis());
                    ins.executeUpdate();
                    try (ResultSet keys = ins.getGeneratedKeys()) {
                        keys.next();
                        id = keys.getLong(1);
                    }
                }
                try (PreparedStatement del = conn.prepareStatement("delete from health_probe where id <= ?")) {
                    del.setLong(1, id - keepRows);
                    del.executeUpdate();
                }
                conn.commit();
            } catch (SQLException e) {
                conn.rollback();
                throw e;
            }
            conn.setAutoCommit(true);
            t = lap(timings, "write_ms", t);

            try (PreparedStatement sel = conn.prepareStatement("select token from health_probe where id = ?")) {
                sel.setLong(1, id);
                try (ResultSet rs = sel.executeQuery()) {
                    String read = rs.next() ? rs.getString(1) : null;
                    if (!token.equals(read)) {
                        throw new UnhealthyDatabase("wrote " + token + " as row " + id + " but read back " + read);
                    }
                }
            }
            try (Statement st = conn.createStatement();
                    ResultSet rs = st.executeQuery("select count(*) from health_probe")) {
                rs.next();
                rows = rs.getLong(1);
            }
            t = lap(timings, "read_ms", t);

            String check;
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("pragma quick_check")) {
                rs.next();
                check = rs.getString(1);
            }
            t = lap(timings, "integrity_ms", t);
            if (!"ok".equals(check)) {
                throw new UnhealthyDatabase("pragma quick_check: " + check);
            }

            out.put("ok", true);
            out.put("path", path);
            out.put("created", !memory && !existed);
            out.put("sqlite_version", version);
            out.put("driver", meta.getDriverName() + " " + meta.getDriverVersion());
            out.put("probe_id", id);
            out.put("rows", rows);
            out.put("quick_check", check);
        }
        timings.put("total_ms", ms(System.nanoTime() - start));
        out.put("timings", timings);
        if (!memory) {
            try {
                out.put("file_bytes", Files.size(Paths.get(path)));
            } catch (java.io.IOException e) {
                // The check passed; the size is a nicety.
            }
        }
        ctx.log("info", "database healthy", Map.of("path", path, "total_ms", timings.get("total_ms")));
        return out;
    }

    private static long lap(Map<String, Object> timings, String name, long since) {
        long now = System.nanoTime();
        timings.put(name, ms(now - since));
        return now;
    }

    private static double ms(long nanos) {
        return Math.round(nanos / 10_000.0) / 100.0;
    }
}
