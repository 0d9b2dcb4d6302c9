import { GraphQLError, GraphQLID, GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { MAX_DATABASE_ID, parseDatabaseId } from '../lib/ids.ts';

function refuse(shown: string, node?: ValueNode): GraphQLError {
  // The code survives when the id is written in the document (graphql reports this error as
  // it is); a variable's is added by graphql/input.ts, which names the variable.
  return new GraphQLError(`ID cannot represent ${shown}: ids are whole numbers from 1 to ${MAX_DATABASE_ID}`, {
    nodes: node,
    extensions: { code: 'BAD_USER_INPUT' },
  });
}

/**
 * The schema's `ID`: output as GraphQL's own, input checked where it enters. Every id here
 * names a database row, so "abc", "1e3", "-5" or 2³¹ are refused while variables are read or
 * the document validated (the client hears which argument), and a resolver only ever sees a
 * canonical id ("42") that fits the column. Clients may send ids as strings or integers, as
 * the GraphQL spec allows for ID.
 */
export const DatabaseID = new GraphQLScalarType({
  name: 'ID',
  description: GraphQLID.description,
  serialize: GraphQLID.serialize,
  parseValue(value) {
    const id = parseDatabaseId(value);
    if (id === null) throw refuse(typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : String(typeof value === 'number' ? value : typeof value));
    return String(id);
  },
  parseLiteral(node: ValueNode) {
    const id = node.kind === Kind.STRING || node.kind === Kind.INT ? parseDatabaseId(node.kind === Kind.INT ? Number(node.value) : node.value) : null;
    if (id === null) throw refuse(node.kind === Kind.STRING ? JSON.stringify(node.value.slice(0, 40)) : node.kind === Kind.INT ? node.value : `a ${node.kind} value`, node);
    return String(id);
  },
});
