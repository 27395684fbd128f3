// Integration tests start real supernode and redis processes; on a 2-core machine running
// several clusters at once would make timings meaningless, so test classes run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
