export {
  createRedis,
  redisOptions,
  describeRedis,
  type RedisConnection,
  type RedisConnectionOptions,
  type RedisTlsOptions,
} from './redis-connection';
