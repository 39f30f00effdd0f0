import { buildCli, processIo, runCli } from './cli.js';

// Process entry of `mssgw` (bin/mssgw.js imports the built copy). The exit code is set, not forced,
// so pending output is flushed before the process ends.
const io = processIo();
process.exitCode = await runCli(buildCli(io), process.argv, io);
