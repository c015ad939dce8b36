/** The pod every scenario makes: namespace cradle-bench, labelled with the run, so a leftover is easy to find. */
export function benchPodConfig(run: string, i: number, namespaceOptions: object): object {
  return {
    metadata: { name: `bench-${i}`, namespace: 'cradle-bench', uid: `${run}-${i}`, attempt: 0 },
    hostname: `bench-${i}`,
    log_directory: `/var/log/pods/cradle-bench_bench-${i}_${run}`,
    labels: { 'cradle.bench': run },
    linux: { security_context: { namespace_options: namespaceOptions } },
  };
}
